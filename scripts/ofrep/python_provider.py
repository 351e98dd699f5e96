"""Evaluates the seeded flags through the OpenFeature Python SDK and its OFREP provider.

The provider has a dynamic context: each evaluation is one POST to
/ofrep/v1/evaluate/flags/{key}. Every case of cases.json ("dynamic") must come back with the
expected value, variant, reason and error code. The server key travels as
`Authorization: Bearer`; an unknown key must be refused (401 → GENERAL, default value).

Environment: CHECKGATE_URL, OFREP_SERVER_KEY. Argument: the path of cases.json.
Exits 1 with one line per mismatch.
"""

import json
import os
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

GETTERS = {
    "boolean": "get_boolean_details",
    "string": "get_string_details",
    "integer": "get_integer_details",
    "object": "get_object_details",
}


def name(x):
    """An enum member's value, or the plain value (None stays None)."""
    return getattr(x, "value", x)


def context(ctx):
    attributes = {k: v for k, v in ctx.items() if k != "targetingKey"}
    return EvaluationContext(targeting_key=ctx.get("targetingKey"), attributes=attributes)


def evaluate(client, case):
    getter = getattr(client, GETTERS[case["type"]])
    return getter(case["flag"], case["default"], evaluation_context=context(case["context"]))


def compare(label, details, expect):
    got = {
        "value": details.value,
        "variant": details.variant,
        "reason": name(details.reason),
        "errorCode": name(details.error_code),
    }
    want = {
        "value": expect["value"],
        "variant": expect.get("variant"),
        "reason": expect["reason"],
        "errorCode": expect.get("errorCode"),
    }
    problems = []
    for field, wanted in want.items():
        # Python's bool is an int: compare types too, so 1 is not taken for true.
        if got[field] != wanted or type(got[field]) is not type(wanted):
            problems.append(f"{label}: {field} is {got[field]!r}, expected {wanted!r}")
    if problems and details.error_message:
        problems.append(f"{label}: the provider said: {details.error_message}")
    return problems


def main():
    base = os.environ["CHECKGATE_URL"]
    key = os.environ["OFREP_SERVER_KEY"]
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)

    api.set_provider(
        OFREPProvider(base, headers_factory=lambda: {"Authorization": f"Bearer {key}"}, timeout=10),
        domain="checkgate",
    )
    client = api.get_client("checkgate")

    problems = []
    for case in cases["dynamic"]:
        problems += compare(case["name"], evaluate(client, case), case["expect"])

    # An unknown key: 401, which the provider reports as GENERAL with the code default.
    api.set_provider(
        OFREPProvider(base, headers_factory=lambda: {"Authorization": "Bearer not-a-key"}, timeout=10),
        domain="unknown-key",
    )
    refused = api.get_client("unknown-key").get_boolean_details(
        "dark-mode", False, evaluation_context=EvaluationContext(targeting_key="user-1")
    )
    problems += compare(
        "an unknown key is refused",
        refused,
        {"value": False, "reason": "ERROR", "errorCode": "GENERAL"},
    )

    api.shutdown()
    total = len(cases["dynamic"]) + 1
    if problems:
        print("python provider: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"python provider: {total} evaluations as expected")


if __name__ == "__main__":
    main()
