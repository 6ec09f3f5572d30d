"""The served OpenAPI document is valid OpenAPI 3.1 and describes every route Flask serves."""
import re

from openapi_spec_validator import validate

from web.openapi import document


def test_the_document_is_valid_openapi_31(client):
    spec = client.get("/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"


def test_every_flask_route_and_method_is_documented(app):
    paths = document()["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        assert path in paths, f"{path} is served but not documented"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {path} is served but not documented"


def test_documented_paths_are_all_served(app):
    served = {re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    assert set(document()["paths"]) <= served


def test_the_docs_page_renders_every_operation(client):
    page = client.get("/docs")
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "POST /v1/models/{model}/jobs" in text and "DELETE /v1/jobs/{job_id}" in text
    assert "http://" not in text and "https://cdn" not in text


def test_the_submit_schema_is_the_one_the_api_enforces(client):
    response = client.post("/v1/models/digits/jobs", json={"instances": [[[1] * 8] * 8], "colour": "red"})
    assert response.status_code == 422
    assert "colour" in response.get_json()["detail"]
