"""The bare FastAPI app `coldstart.py` compares the product's start-up with: one route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
