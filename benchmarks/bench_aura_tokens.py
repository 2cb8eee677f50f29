"""Aura's token estimate against the real tokenizers openchat-ui 0a98709 locks.

    python benchmarks/bench_aura_tokens.py

Prints, for mistral-tokenizer-js 1.0.0 (``openchat_v3.2_mistral``) and
llama3-tokenizer-js 1.1.3 (``openchat_3.6``), how
:func:`llmclients.providers.aura.estimate_tokens` compares with their counts
over the texts of ``tests/data/aura_tokens.json``: the ratio of the totals,
the mean error text by text, the worst texts either way; and the same for
counting whitespace-separated words (the emulator's count before issue 14).

The counts in that file were made with Node.js and the two npm packages::

    npm install llama3-tokenizer-js@1.1.3 mistral-tokenizer-js@1.0.0
    // count.mjs: texts -> [mistral, llama3], no BOS/EOS
    import llama3 from 'llama3-tokenizer-js';
    import mistral from 'mistral-tokenizer-js';
    texts.map(t => [mistral.encode(t, false).length,
                    llama3.encode(t, {bos: false, eos: false}).length]);
"""

from __future__ import annotations

import json
import math
import pathlib
import statistics
from typing import Callable, Dict, List

from llmclients.providers.aura import estimate_tokens

DATA = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "aura_tokens.json"


def report(name: str, count: Callable[[str], int], texts: List[Dict[str, object]]) -> None:
    for tokenizer in ("mistral", "llama3"):
        pairs = [(count(str(item["text"])), int(str(item[tokenizer]))) for item in texts]
        ratios = [estimated / real for estimated, real in pairs]
        total = sum(estimated for estimated, _ in pairs) / sum(real for _, real in pairs)
        error = math.exp(statistics.mean(abs(math.log(ratio)) for ratio in ratios)) - 1
        print(
            f"{name:<16} vs {tokenizer:<8} total {total:.2f}x  mean error {error:5.1%}  "
            f"range {min(ratios):.2f}x-{max(ratios):.2f}x"
        )


def main() -> None:
    texts = json.loads(DATA.read_text("utf-8"))["texts"]
    print(f"{len(texts)} texts, {sum(len(item['text']) for item in texts)} characters")
    report("estimate_tokens", estimate_tokens, texts)
    report("whitespace words", lambda text: len(text.split()), texts)


if __name__ == "__main__":
    main()
