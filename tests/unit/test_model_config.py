"""inferq.yaml: per-model batching settings over the service defaults."""
import pytest

from shared.settings import Settings
from workers.inference.model_config import InvalidModelConfig, load_config


def test_defaults_come_from_settings_when_there_is_no_file(tmp_path):
    config = load_config(tmp_path, Settings(max_batch_size=32, max_delay_ms=5, batch_adaptive=True))
    assert (config.batching.max_batch_size, config.batching.max_delay_s, config.batching.adaptive) == (32, 0.005, True)


def test_the_file_overrides_batching_per_model(tmp_path):
    (tmp_path / "inferq.yaml").write_text("description: tiny\nbatching:\n  max_batch_size: 8\n  adaptive: false\n")
    config = load_config(tmp_path, Settings(max_delay_ms=7))
    assert config.batching.max_batch_size == 8 and config.batching.adaptive is False
    assert config.batching.max_delay_s == 0.007 and config.description == "tiny"


@pytest.mark.parametrize("text", ["batching: [1]", "batching:\n  max_batch_size: big", "batching:\n  colour: red",
                                  "batching:\n  max_batch_size: 0", "- a list", "batching: {max_batch_size: 4"])
def test_invalid_files_are_refused_with_the_reason(tmp_path, text):
    (tmp_path / "inferq.yaml").write_text(text)
    with pytest.raises(InvalidModelConfig, match="inferq.yaml"):
        load_config(tmp_path, Settings())
