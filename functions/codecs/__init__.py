"""Wire formats <-> arrays: one codec per format, chosen per route and request.

Request codecs (bytes -> ``plans.Inputs``: one array per graph input, problems per item):

    vertex.py        {"instances": [...]} and TF Serving's columnar {"inputs": ...}
                     (/predict, /batch-predict, Vertex AI); matrix.py is its bulk decoder
                     for plain numeric rows (simdjson, no Python object per value)
    v2.py            Open Inference Protocol JSON and binary bodies (v2_tensors.py: the
                     datatypes, JSON data and binary tensor data)
    openai_embeddings.py   OpenAI's POST /v1/embeddings: text (or the model's own token
                     ids) in, embeddings in float or base64 out, with token counts
    json_text.py     the JSON text rules every JSON codec shares (json_fallback.py: the
                     stdlib parse behind orjson for NaN, 1e999, bounded depth)

Input plans (instances -> feeds), chosen once per loaded model from signature and card:

    plans.py         TabularPlan, TensorPlan, TextPlan, ``plan_for``; ``Inputs``
    tabular.py       feature rows -> one matrix (lists in order or objects by name)
    tensors.py       per-instance tensors by input name, checked against the graph
    tokens.py        text -> token inputs with the card's tokenizer; pooling

Response codecs (``service.Scored`` -> bytes), chosen per request:

    predictions.py   outputs -> prediction columns and row objects (the card's rule)
    predict_bodies.py   rows or columns (``?format=``) for /predict and /batch-predict
    v2.py            v2 outputs as JSON data or binary tensors

The rules and the documents:

    values.py        the value rules (dtypes, integer ranges, NaN/Inf, booleans, strings)
                     that every codec and plan applies, and the JSON Schema of a value
    schemas.py       an instance and a prediction as JSON Schema, from plan and card
    v2_schemas.py    the /v2 routes' schemas for the OpenAPI document
    openai_schemas.py   the OpenAI routes' schemas (embedding models only)
"""
