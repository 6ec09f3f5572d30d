"""Blueprints: each validates its input, calls one domain function and answers."""
