"""``POST /v1/embeddings``: the embedded embedder (multilingual-e5-small, 4-bit) behind OpenAI's API.

Request: ``input`` (a string or a list of strings; token arrays are refused), ``model`` (``e5``, also
``multilingual-e5-small`` and ``intfloat/multilingual-e5-small``; left out: e5), ``encoding_format``
(``float`` or ``base64``), ``dimensions`` (384 or left out), and Workbench's ``input_type``: ``query``
(the default: e5's prefix for queries and for symmetric similarity) or ``passage`` (documents to be
searched). Vectors are L2-normalised float32.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from workbench.server.errors import ApiError, bad_request

MODEL_NAMES = {"e5": "e5", "multilingual-e5-small": "e5", "intfloat/multilingual-e5-small": "e5"}
MAX_INPUTS = 2048
MAX_INPUT_CHARS = 100_000


def embeddings_response(body: Any) -> dict[str, Any]:
    """Embed a request's inputs; return the OpenAI ``list`` of ``embedding`` objects.

    Raises:
        ApiError: 400 naming the field at fault; 404 for an unknown model.
    """
    from workbench.documents.embedding import get_embedder

    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    name = body.get("model", "e5")
    if not isinstance(name, str) or name not in MODEL_NAMES:
        raise ApiError(
            404,
            f"No embedding model {name!r} here; use one of {', '.join(sorted(MODEL_NAMES))}.",
            param="model",
            code="model_not_found",
        )
    texts = _inputs(body.get("input"))
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad_request("encoding_format must be 'float' or 'base64'.", "encoding_format")
    kind = body.get("input_type", "query")
    if kind not in ("query", "passage"):
        raise bad_request("input_type must be 'query' or 'passage'.", "input_type")
    embedder = get_embedder(MODEL_NAMES[name])
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or dimensions != embedder.dim):
        raise bad_request(f"This model's embeddings have {embedder.dim} dimensions only.", "dimensions")
    if kind == "passage":
        vectors = embedder.passages(texts)
    else:
        vectors = np.stack([embedder.query(text) for text in texts])
    tokens = sum(embedder.count_tokens(text) for text in texts)
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(vector, encoding)}
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _inputs(value: Any) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise bad_request(
            "input must be a string or a non-empty list of strings (token arrays are not taken).", "input"
        )
    if len(texts) > MAX_INPUTS:
        raise bad_request(f"At most {MAX_INPUTS} inputs per request.", "input")
    if any(not text.strip() for text in texts):
        raise bad_request("An input is empty; send text to embed.", "input")
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request(
                "An input holds a lone surrogate (not text); send valid Unicode.", "input"
            ) from None
    if any(len(text) > MAX_INPUT_CHARS for text in texts):
        raise bad_request(f"An input is longer than {MAX_INPUT_CHARS:,} characters; split it.", "input")
    return texts


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    array = np.asarray(vector, dtype=np.float32)
    if encoding == "base64":
        return base64.b64encode(array.tobytes()).decode("ascii")
    return [float(x) for x in array]
