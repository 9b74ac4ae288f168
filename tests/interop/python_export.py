"""Export a small multi-service trace with the real OpenTelemetry Python SDK.

Used by tests/python_interop.rs: it points this at a running `faultline record`
and compares the capture with the manifest printed here.

    python_export.py --protocol grpc|http --endpoint http://127.0.0.1:PORT

Prints one JSON object per finished span on stdout (trace_id, span_id, parent_id,
name, service, kind), so the test knows exactly what was sent.
"""

import argparse
import json
import sys

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=10)


def provider(service, protocol, endpoint):
    p = TracerProvider(resource=Resource.create({"service.name": service}))
    p.add_span_processor(BatchSpanProcessor(exporter(protocol, endpoint), max_export_batch_size=8))
    return p


def describe(span, service):
    ctx = span.get_span_context()
    parent = span.parent.span_id if span.parent else None
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(parent, "016x") if parent else None,
        "name": span.name,
        "service": service,
        "kind": span.kind.name.lower(),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()

    frontend = provider("frontend", args.protocol, args.endpoint)
    checkout = provider("checkout", args.protocol, args.endpoint)
    sent = []

    def record(span, service):
        sent.append(describe(span, service))

    fe = frontend.get_tracer("interop.frontend")
    co = checkout.get_tracer("interop.checkout")
    for i in range(args.requests):
        with fe.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "GET")
            root.set_attribute("http.route", "/checkout")
            with fe.start_as_current_span("POST /pay", kind=SpanKind.CLIENT) as client:
                client.set_attribute("http.request.resend_count", i % 2)
                # Cross the "network" the way services do: W3C headers only.
                headers = {}
                propagate.inject(headers)
                remote = propagate.extract(headers)
                token = context.attach(remote)
                try:
                    with co.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as server:
                        server.add_event("charged", {"amount": 12.5})
                        if i == 0:
                            server.set_status(Status(StatusCode.ERROR, "card declined"))
                        with co.start_as_current_span(
                            "orders publish",
                            kind=SpanKind.PRODUCER,
                            links=[Link(root.get_span_context(), {"reason": "audit"})],
                        ) as producer:
                            record(producer, "checkout")
                        record(server, "checkout")
                finally:
                    context.detach(token)
                record(client, "frontend")
            record(root, "frontend")

    ok = frontend.force_flush(10_000) and checkout.force_flush(10_000)
    frontend.shutdown()
    checkout.shutdown()
    if not ok:
        print("force_flush timed out", file=sys.stderr)
        return 1
    for s in sent:
        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
