"""The intake benchmark's references, served by uvicorn like the intake.

`app`: a bare ASGI app that reads the body and returns a constant (the target's baseline).
`fastapi_app`: a bare FastAPI app with one POST endpoint that parses the same JSON body with the intake's
own pydantic model (`DocumentBatch`) and returns a constant, without storage, auth or middleware: the
framework's own ceiling on this machine.
"""

from fastapi import FastAPI

from orca_intake.routers.documents import DocumentBatch

BODY = b'{"status":"ok"}'


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


fastapi_app = FastAPI()


@fastapi_app.post("/v1/collections/{collection}/documents", status_code=202)
async def post_documents(collection: str, batch: DocumentBatch) -> dict[str, str]:
    return {"status": "ok"}
