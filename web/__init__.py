"""The HTTP API: Flask app factory, blueprints and the wsgi entry. Never imports TensorFlow."""
