"""Run in the openai client venv (tests/clients/openai.txt): the openai SDK and LangChain's
OpenAIEmbeddings against a served embedding model. Arguments: base URL (the function's,
without /v1), model name, JSON list of texts. Prints one JSON object of what they got."""

from __future__ import annotations

import json
import sys

import openai
from langchain_openai import OpenAIEmbeddings

url, model, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = openai.OpenAI(base_url=f"{url}/v1", api_key="an-identity-token", max_retries=0)
found: dict = {}

answer = client.embeddings.create(model=model, input=texts, encoding_format="float")
found["float"] = [d.embedding for d in answer.data]
found["usage"] = answer.usage.model_dump()
found["model"] = answer.model
found["default"] = [d.embedding for d in  # the SDK asks for base64 and decodes it
                    client.embeddings.create(model=model, input=texts).data]
found["single"] = client.embeddings.create(model=model, input=texts[0]).data[0].embedding
found["models"] = [m.id for m in client.models.list()]

refusals = {"tiktoken_ids": [[9906, 1917, 0], [40, 1097]],  # what LangChain's default sends
            "one_id_list": [101, 2023, 102]}
for name, ids in refusals.items():
    try:
        client.embeddings.create(model=model, input=ids)
        found[name] = "accepted"
    except openai.BadRequestError as exc:
        found[name] = {"status": exc.status_code, **exc.body}
try:
    client.embeddings.create(model="text-embedding-3-small", input="x")
    found["unknown_model"] = "accepted"
except openai.NotFoundError as exc:
    found["unknown_model"] = {"status": exc.status_code, **exc.body}

lc = OpenAIEmbeddings(model=model, base_url=f"{url}/v1", api_key="an-identity-token",
                      check_embedding_ctx_length=False, max_retries=0)
found["langchain_documents"] = lc.embed_documents(texts)
found["langchain_query"] = lc.embed_query(texts[0])
print(json.dumps(found))
