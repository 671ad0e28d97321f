"""The floor of ``api_latency.py``: FastAPI under the same uvicorn, every GET under /api/v1 answering a
small fixed JSON object after checking that a bearer token is sent, with no FlowForge, metadata or
middleware. ``python bench/api_latency.py --server floor=hello:2`` serves it; what a route costs
above it is FlowForge's own work."""

from __future__ import annotations

from fastapi import FastAPI, Header, HTTPException

app = FastAPI()


@app.get("/api/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/{path:path}")
def anything(path: str, authorization: str = Header("")) -> dict[str, object]:
    if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise HTTPException(401, "no token")
    return {"path": path, "data": [], "count": 0}
