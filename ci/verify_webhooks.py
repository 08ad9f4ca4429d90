#!/usr/bin/env python3
"""Verifies webhook deliveries with the Standard Webhooks reference library
(the `standardwebhooks` package from PyPI), which no one here wrote.

Reads NDJSON on standard input, one delivery per line:
  {"secrets": ["whsec_…", …], "headers": {"webhook-id": …, …}, "body": "…"}
Every secret listed must verify the delivery on its own (during a rotation
both the new and the old secret must). Prints how many deliveries and
signatures verified; exits 1 naming the first that does not.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> int:
    deliveries = 0
    signatures = 0
    for number, line in enumerate(sys.stdin, start=1):
        line = line.strip()
        if not line:
            continue
        delivery = json.loads(line)
        for secret in delivery["secrets"]:
            try:
                Webhook(secret).verify(delivery["body"], delivery["headers"])
            except Exception as error:  # the library raises its own types
                print(
                    f"delivery {number} ({delivery['headers'].get('webhook-id')}) "
                    f"does not verify with secret {secret[:10]}…: {error!r}",
                    file=sys.stderr,
                )
                return 1
            signatures += 1
        deliveries += 1
    print(f"standardwebhooks verified {deliveries} deliveries, {signatures} signatures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
