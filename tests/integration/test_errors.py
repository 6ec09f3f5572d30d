"""Every error status comes back as problem+json through nginx (and from Flask directly)."""
import pytest

from tests.integration.helpers import assert_problem, submit

LIMIT = 1024 * 1024


def post_raw(http, url, body: bytes, content_type="application/json", model="digits"):
    return http.post(f"{url}/v1/models/{model}/jobs", data=body,
                     headers={"Content-Type": content_type}, timeout=30)


@pytest.mark.parametrize("body", [b"{not json", b'{"instances": [NaN]}', b'{"instances": [Infinity]}',
                                  b'{"instances": [-Infinity]}', b"[" * 50_000 + b"]" * 50_000,
                                  b'{"instances": [' + b"9" * 5000 + b"]}"])
def test_malformed_json_is_400(stack, http, body):
    assert_problem(post_raw(http, stack.url, body), 400)


def test_unknown_job_is_404(stack, http):
    assert_problem(http.get(f"{stack.url}/v1/jobs/00000000-0000-4000-8000-000000000000"), 404)


@pytest.mark.parametrize("model", ["nope", "ünïcødé", "x" * 2000])
def test_unknown_model_is_404(stack, http, model):
    assert_problem(submit(http, stack.url, model, [[1]]), 404)


def test_very_long_url_is_a_problem_not_html(stack, http):
    response = http.get(f"{stack.url}/v1/jobs/{'x' * 20000}", timeout=10)
    assert response.status_code in (414, 431, 400)
    assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("target", ["nginx", "gunicorn"])
def test_body_over_the_limit_is_413_from_nginx_and_flask(stack, http, target):
    url = stack.url if target == "nginx" else stack.web_url
    body = b'{"instances": [' + b"1," * (LIMIT // 2) + b"1]}"
    response = post_raw(http, url, body)
    assert_problem(response, 413)
    if target == "nginx":
        assert response.headers.get("Server") == "nginx"


@pytest.mark.parametrize("content_type, model", [("text/plain", "digits"), ("application/xml", "digits"),
                                                 ("multipart/form-data; boundary=x", "faulty")])
def test_wrong_content_type_is_415(stack, http, content_type, model):
    """Image forms are for models whose inferq.yaml declares image preprocessing (faulty does not)."""
    assert_problem(post_raw(http, stack.url, b'{"instances": [[1]]}', content_type, model=model), 415)


def test_an_empty_image_form_is_422(stack, http):
    problem = assert_problem(post_raw(http, stack.url, b"--x--\r\n", "multipart/form-data; boundary=x"), 422)
    assert "no image file" in problem["detail"]


def test_shape_mismatch_is_422_naming_index_and_shapes(stack, http):
    problem = assert_problem(submit(http, stack.url, "digits", [[[0] * 8] * 8, [1, 2, 3]]), 422)
    assert problem["detail"] == "instances[1] has shape (3,), model digits expects (8, 8)"


@pytest.mark.parametrize("instances", [[], [[["a"] * 8] * 8], "nope", [[[1e300] * 8] * 8]])
def test_instances_that_do_not_fit_are_422(stack, http, instances):
    assert_problem(submit(http, stack.url, "digits", instances), 422)


def test_unknown_route_and_method_are_problems(stack, http):
    assert_problem(http.get(f"{stack.url}/nothing-here"), 404)
    assert_problem(http.put(f"{stack.url}/v1/models"), 405)


def test_too_many_instances_are_422_before_anything_is_queued(stack, http):
    import redis

    from shared.signatures import ModelCatalog

    catalog = ModelCatalog(redis.Redis.from_url(stack.redis_url()))
    before = catalog.pending("digits")
    too_many = assert_problem(submit(http, stack.url, "digits", [[[0] * 8] * 8] * 1025), 422)
    assert "1025 instances exceed the limit of 1024" in too_many["detail"]
    assert catalog.pending("digits") == before
