"""The HTTP API: OpenAI-compatible chat and models, plus ingest, collections and adapters.

Mounted by ``app.server.create_app`` on the same port as the Gradio app. ``guard`` holds
what every request passes through (auth, admission control, metrics); ``bridge`` turns the
synchronous token stream into an abortable async one.
"""
