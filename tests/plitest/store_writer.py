"""A writer process for the durability test: delivers messages in a loop and prints one line
``ACK <uid> <sha256>`` per acknowledged delivery (after ``deliver`` returned, i.e. after COMMIT).

Run as ``python tests/plitest/store_writer.py URL MESSAGES_DIR SCHEMA ACCOUNT_ID COUNT``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pli.mailbox.store import DeliveryTarget, Store
from plitest.store import sized_message


async def main(url: str, messages: Path, schema: str, account_id: int, count: int) -> None:
    store = await Store.open_url(url, messages, schema=schema or None, migrate=False)
    try:
        for index in range(count):
            raw = sized_message(random.choice((1024, 20_000, 150_000)), subject=f"n{index}")
            delivered = await store.messages.deliver(raw, [DeliveryTarget(account_id)])
            digest = hashlib.sha256(raw).hexdigest()
            print(f"ACK {delivered[0].uid} {digest}", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    url, messages, schema, account, count = sys.argv[1:6]
    asyncio.run(main(url, Path(messages), schema, int(account), int(count)))
