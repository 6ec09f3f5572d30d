import pytest

from shared.settings import Settings


def test_defaults_apply_when_environment_is_empty():
    settings = Settings.from_env({})
    assert settings.port == 8000
    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.job_ttl_s == 86400
    assert settings.wait_cap_s == 30.0


def test_values_are_read_from_prefixed_variables_and_converted():
    settings = Settings.from_env({"INFERQ_PORT": "9000", "INFERQ_WAIT_CAP_S": "2.5",
                                  "INFERQ_REDIS_URL": "redis://example:1/2", "PORT": "1"})
    assert settings.port == 9000
    assert settings.wait_cap_s == 2.5
    assert settings.redis_url == "redis://example:1/2"


def test_invalid_number_names_the_variable():
    with pytest.raises(ValueError, match="INFERQ_PORT"):
        Settings.from_env({"INFERQ_PORT": "eighty"})


def test_negative_limits_are_rejected():
    with pytest.raises(ValueError, match="INFERQ_MAX_BODY_BYTES"):
        Settings.from_env({"INFERQ_MAX_BODY_BYTES": "-1"})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().port = 1


def test_worker_models_splits_and_trims_names():
    assert Settings(worker_models=" digits, mobilenet ,").model_names == ["digits", "mobilenet"]


@pytest.mark.parametrize("raw, expected", [("true", True), ("0", False), ("No", False), ("on", True)])
def test_booleans_accept_the_usual_spellings(raw, expected):
    assert Settings.from_env({"INFERQ_BATCH_ADAPTIVE": raw}).batch_adaptive is expected


def test_a_misspelled_boolean_is_an_error():
    with pytest.raises(ValueError, match="INFERQ_BATCH_ADAPTIVE"):
        Settings.from_env({"INFERQ_BATCH_ADAPTIVE": "maybe"})
