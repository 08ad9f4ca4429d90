#!/usr/bin/env python3
"""Parses a Prometheus text exposition (version 0.0.4) with the Prometheus
Python client's own parser (`prometheus_client.parser`, PyPI), which no one
here wrote, and prints what it read as JSON, for the metrics test to check.

Reads the exposition on standard input. Prints one JSON object:
  {"families": {"<family name>": "<type>", …},
   "samples": [{"name": …, "labels": {…}, "value": …}, …]}
A value that is not finite is printed as a string ("+Inf", "NaN"). Exits 1,
with the parser's message, if the text does not parse.
"""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def number(value: float):
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def main() -> int:
    text = sys.stdin.read()
    families = {}
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                samples.append(
                    {
                        "name": sample.name,
                        "labels": dict(sample.labels),
                        "value": number(sample.value),
                    }
                )
    except Exception as error:  # the parser raises ValueError and others
        print(f"the exposition does not parse: {error}", file=sys.stderr)
        return 1
    json.dump({"families": families, "samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
