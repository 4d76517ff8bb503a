"""The methods built on peft beyond LoRA (issue 18): adapter layers, P-tuning, BitFit,
LayerNorm-only and top-N blocks. On a tiny model each trains only what it should,
changes those weights, lands in the registry and answers through the peft generator."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from app.generation.base import GenerationParams, GeneratorError
from app.generation.peft_backend import PeftGenerator
from training.config import ConfigError, SFTArgs, load_args, validate
from training.methods import PEFT, SFT_METHODS, served_by
from training.registry import AdapterRegistry
from training.sft import train_sft

# method -> what its trainable parameter names look like; and options for the tiny model
INTENDED = {
    "bottleneck": r"\.(self_attn\.o_proj|mlp\.down_proj)\.bottleneck_(down|up)\.default\.",
    "ptuning": r"^prompt_encoder\.default\.",
    "bitfit": r"\.(q|k|v|o|gate|up|down)_proj\.beft_bias\.default$",
    "layernorm": r"(input_layernorm|post_attention_layernorm|model\.norm)\.ln_tuning_layers\.",
    "top-blocks": r"(model\.layers\.1\.|model\.norm\.)modules_to_save\.default\.",
}
OPTIONS = {"top-blocks": {"top_blocks": 1}, "ptuning": {"num_virtual_tokens": 4}}
# trainable parameters on the tiny model (hidden 32, FFN 64, 2 layers, k/v 16 wide)
COUNTS = {
    "bottleneck": 2 * 2 * (2 * 32 * 2 + 2 + 32),  # 2 layers x (o_proj, down_proj), r = 32 // 16
    "bitfit": 2 * (32 + 16 + 16 + 32 + 64 + 64 + 32),  # one bias per projection output
    "layernorm": 2 * 2 * 32 + 32,  # two norms per block and the final one
    "top-blocks": 2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64 + 2 * 32 + 32,  # block 1 + final norm
}


def _args(tiny_model, data, method, **kw):
    return validate(
        SFTArgs(
            name=f"tiny-{method}",
            dataset=str(data),
            base_model=tiny_model,
            method=method,
            max_steps=3,
            batch_size=4,
            learning_rate=0.01,
            logging_steps=1,
            forgetting_check=False,
            **{**OPTIONS.get(method, {}), **kw},
        )
    )


@pytest.fixture
def sft_data(tmp_path):
    path = tmp_path / "sft.jsonl"
    rows = [
        {"instruction": f"What is {i} plus {i}?", "output": f"It is {2 * i}."} for i in range(8)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bottleneck_adapters_start_as_the_identity_and_refuse_to_merge(tiny_model):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from training.peft_methods import ensure_registered
    from training.peft_methods.bottleneck import BottleneckConfig

    ensure_registered()
    ensure_registered()  # registering is idempotent
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        expected = base(ids).logits.clone()
    for placement, wrapped in (("houlsby", 4), ("pfeiffer", 2)):
        config = BottleneckConfig(task_type="CAUSAL_LM", placement=placement)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model).eval(), config)
        layers = [n for n, _ in model.named_modules() if n.endswith(".bottleneck_up.default")]
        assert len(layers) == wrapped
        with torch.no_grad():
            assert torch.equal(model(ids).logits, expected)  # exactly, not approximately
        with pytest.raises(ValueError, match="cannot be merged"):
            model.merge_and_unload()


@pytest.mark.parametrize("method", list(INTENDED))
def test_each_method_trains_only_its_parameters_and_serves(tmp_path, tiny_model, sft_data, method):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    args = _args(tiny_model, sft_data, method)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), SFT_METHODS[method].peft_config(args)
    )
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(re.search(INTENDED[method], n) for n in trainable), trainable
    if method in COUNTS:
        assert sum(trainable.values()) == COUNTS[method]

    registry = AdapterRegistry(tmp_path / "adapters")
    manifest = train_sft(args, registry, tmp_path / "runs")
    assert manifest.kind == method and served_by(manifest.kind) == PEFT
    assert manifest.metrics["max_weight_change"] > 0
    assert manifest.trainable_parameters == sum(trainable.values())
    base_total = AutoModelForCausalLM.from_pretrained(tiny_model).num_parameters()
    if method in ("top-blocks", "layernorm"):  # trains base weights (copies), adds none
        assert manifest.total_parameters == base_total
    else:
        assert manifest.total_parameters == base_total + manifest.trainable_parameters
    assert [m.name for m in registry.list()] == [f"tiny-{method}"]

    generator = PeftGenerator(registry)
    assert generator.models() == [f"tiny-{method}"]
    params = GenerationParams(temperature=0.0, max_tokens=4, seed=0)
    chunks = list(
        generator.complete_stream(
            [{"role": "user", "content": "What is 2 plus 2?"}],
            adapter=f"tiny-{method}",
            params=params,
            fields={"stream_options": {"include_usage": True}},
        )
    )
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    loaded, _ = generator._model(manifest)
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        tuned = loaded(input_ids=ids).logits[:, -1]
        with loaded.disable_adapter():
            base = loaded(input_ids=ids).logits[:, -1]
    assert not torch.allclose(tuned, base)  # the saved weights came back and are applied


def test_a_bottleneck_adapter_loads_in_a_fresh_process(tmp_path, tiny_model, sft_data):
    registry = AdapterRegistry(tmp_path / "adapters")
    train_sft(_args(tiny_model, sft_data, "bottleneck"), registry, tmp_path / "runs")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from app.generation.base import GenerationParams\n"
        "from app.generation.peft_backend import PeftGenerator\n"
        "from training.registry import AdapterRegistry\n"
        "gen = PeftGenerator(AdapterRegistry(Path(sys.argv[1])))\n"
        "p = GenerationParams(temperature=0.0, max_tokens=3, seed=0)\n"
        "msgs = [{'role': 'user', 'content': 'Hi'}]\n"
        "print(repr(''.join(gen.stream(msgs, adapter='tiny-bottleneck', params=p))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(registry.root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_bad_method_options_and_a_foreign_base_are_refused(tmp_path, tiny_model, sft_data):
    from transformers import LlamaConfig, LlamaForCausalLM

    def load(**values):
        return load_args(SFTArgs, None, {"name": "x", "dataset": str(sft_data), **values})

    with pytest.raises(ConfigError, match=r"adapter_reduction_factor=0 is outside .* 1\.\.4096"):
        load(method="bottleneck", adapter_reduction_factor=0)
    with pytest.raises(ConfigError, match="adapter_placement='middle' is not one of"):
        load(method="bottleneck", adapter_placement="middle")
    with pytest.raises(ConfigError, match="top_blocks=0 is outside"):
        load(method="top-blocks", top_blocks=0)
    with pytest.raises(ConfigError, match="ptuning_encoder='gru' is not one of mlp, lstm"):
        load(method="ptuning", ptuning_encoder="gru")
    with pytest.raises(ConfigError, match="resume is not supported for method='ptuning'"):
        load(method="ptuning", resume=True)
    assert load(method="prompt", resume=True).resume  # prompt tuning resumes fine

    registry = AdapterRegistry(tmp_path / "adapters")
    with pytest.raises(ConfigError, match="top_blocks=3 is more than the 2 blocks of"):
        train_sft(_args(tiny_model, sft_data, "top-blocks", top_blocks=3), registry, tmp_path)
    assert registry.list() == [] and not list((registry.root / ".staging").glob("*"))

    # an adapter whose recorded base is another model (here: wider) is refused by name
    train_sft(_args(tiny_model, sft_data, "bottleneck"), registry, tmp_path / "runs")
    other = tmp_path / "other-base"
    config = LlamaConfig.from_pretrained(tiny_model)
    config.hidden_size, config.intermediate_size = 48, 96
    LlamaForCausalLM(config).save_pretrained(other)
    manifest_file = registry.path("tiny-bottleneck") / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest_file.write_text(json.dumps({**manifest, "base_model": str(other)}))
    before = sorted(p.name for p in registry.path("tiny-bottleneck").iterdir())
    with pytest.raises(GeneratorError, match="'tiny-bottleneck' .* another base"):
        list(
            PeftGenerator(registry).stream(
                [{"role": "user", "content": "Hi"}],
                adapter="tiny-bottleneck",
                params=GenerationParams(max_tokens=2),
            )
        )
    assert sorted(p.name for p in registry.path("tiny-bottleneck").iterdir()) == before


def test_too_many_top_blocks_are_refused_before_the_model_loads(
    monkeypatch, tmp_path, tiny_model, sft_data
):
    """The check reads the base's config only: no model is loaded and an earlier run's
    folder (checkpoints for --resume) is left as it was."""
    from transformers import AutoModelForCausalLM

    monkeypatch.setattr(
        AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("loaded a model")
    )
    earlier = tmp_path / "runs/tiny-top-blocks/checkpoints/checkpoint-2"
    earlier.mkdir(parents=True)
    registry = AdapterRegistry(tmp_path / "adapters")
    with pytest.raises(ConfigError, match="top_blocks=3 is more than the 2 blocks of"):
        train_sft(
            _args(tiny_model, sft_data, "top-blocks", top_blocks=3), registry, tmp_path / "runs"
        )
    assert earlier.is_dir() and registry.list() == []


def test_a_stream_closed_early_stops_generating(tmp_path, tiny_model, sft_data):
    import threading
    import time

    registry = AdapterRegistry(tmp_path / "adapters")
    train_sft(_args(tiny_model, sft_data, "layernorm"), registry, tmp_path / "runs")
    generator = PeftGenerator(registry)
    messages = [{"role": "user", "content": "Count to a thousand."}]
    params = GenerationParams(temperature=1.0, max_tokens=300, seed=0)
    started = time.monotonic()
    assert "".join(generator.stream(messages, adapter="tiny-layernorm", params=params))
    whole = time.monotonic() - started
    threads = threading.active_count()
    stream = generator.stream(messages, adapter="tiny-layernorm", params=params)
    started = time.monotonic()
    assert next(stream)  # generation runs on a worker thread
    stream.close()  # what the loop guard does to a stream that repeats itself
    assert time.monotonic() - started < whole / 3  # it stopped instead of running on
    assert threading.active_count() == threads
