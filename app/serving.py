"""`ragtune serve`: the engine (if local) plus the web app, with a clean shutdown."""

from __future__ import annotations

import contextlib

import typer

from app.components import generator_url
from app.generation.engine import EngineSupervisor, VLLMEngine
from app.models import resolve_generator_model
from app.settings import Settings


def local_engine(settings: Settings) -> VLLMEngine:
    """The engine ``ragtune serve`` would start for these settings."""
    model = resolve_generator_model(settings.generator.model, settings.models_dir)
    return VLLMEngine(settings.generator, model, settings.engine_log)


def run_server(settings: Settings, *, start_engine: bool = True) -> None:
    """Run until interrupted: engine first (waits for /health), then the web app."""
    import uvicorn

    from app.server import create_app

    with contextlib.ExitStack() as stack:
        if settings.generator.mode == "vllm" and settings.generator.url is None and start_engine:
            engine = local_engine(settings)
            if engine.is_healthy():
                typer.echo(f"reusing the vLLM server already answering at {engine.url}", err=True)
            else:
                typer.echo(
                    f"starting vLLM ({engine.model}) at {engine.url}; log: {engine.log_path}",
                    err=True,
                )
                stack.enter_context(engine)
                typer.echo("vLLM is ready", err=True)
                supervisor = EngineSupervisor(
                    engine,
                    settings.generator.max_restarts,
                    lambda message: typer.echo(message, err=True),
                )
                stack.callback(supervisor.stop)  # runs before the engine's own stop
                supervisor.start()
        else:
            typer.echo(f"using the generator at {generator_url(settings)}", err=True)
        app = create_app(settings)
        typer.echo(f"ragtune is running on http://{settings.ui.host}:{settings.ui.port}", err=True)
        uvicorn.run(app, host=settings.ui.host, port=settings.ui.port, log_level="warning")
