"""OpenAI-compatible embeddings: the routes that point the openai SDK, LangChain and other
OpenAI clients at an embedding model.

    routes.py        POST /v1/embeddings, GET /v1/models (and both without /v1), and
                     OpenAI's error shape

Its wire format is a codec like any other: functions.codecs.openai_embeddings (requests and
answers) and functions.codecs.openai_schemas (their JSON Schemas); the decoded token inputs
go through the same service as /predict (dedupe, batcher, isolation, metrics).
"""

from functions.openai.routes import openai_routes

__all__ = ["openai_routes"]
