#!/usr/bin/env python3
"""A token stream for training demos and tests, as nanoGPT and llm.c write
them: a flat little-endian uint16 (or uint32) file of token ids, optionally
after llm.c's header (--format llm.c).

The text is generated from a small grammar ("the quick cat sees a red
ball.") and encoded as bytes (vocabulary 256), so a small GPT learns it in a
few hundred steps: the loss starts at ln(256) = 5.5 and falls below 1.5.

  tokens.py -o train.bin --tokens 200000
"""
import argparse

import numpy as np

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "a small bird",
            "the teacher", "our neighbour", "the red fox"]
VERBS = ["sees", "likes", "finds", "carries", "watches", "draws", "follows"]
OBJECTS = ["a ball", "the moon", "a green apple", "the river", "a blue kite",
           "the tall tree", "a wooden box", "the garden"]
ENDINGS = [".", " today.", " again.", " at night.", " in the rain."]


def text(n_chars, seed):
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < n_chars:
        s = (f"{SUBJECTS[rng.integers(len(SUBJECTS))]} "
             f"{VERBS[rng.integers(len(VERBS))]} "
             f"{OBJECTS[rng.integers(len(OBJECTS))]}"
             f"{ENDINGS[rng.integers(len(ENDINGS))]} ")
        parts.append(s)
        total += len(s)
    return "".join(parts)[:n_chars]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, help="token file to write")
    ap.add_argument("--tokens", type=int, default=200000, help="number of tokens")
    ap.add_argument("--dtype", choices=["uint16", "uint32"], default="uint16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=["flat", "llm.c"], default="flat",
                    help="flat ids (nanoGPT), or llm.c's 1024-byte header "
                         "(magic 20240520, version 1 for uint16 / 2 for "
                         "uint32, token count) before them")
    a = ap.parse_args()
    ids = np.frombuffer(text(a.tokens, a.seed).encode("ascii"), dtype=np.uint8)
    with open(a.output, "wb") as f:
        if a.format == "llm.c":
            header = np.zeros(256, np.int32)
            header[:3] = [20240520, 1 if a.dtype == "uint16" else 2, len(ids)]
            f.write(header.tobytes())
        f.write(ids.astype(a.dtype).tobytes())
    print(f"wrote {len(ids)} {a.dtype} tokens (bytes of generated sentences) "
          f"to {a.output}")


if __name__ == "__main__":
    main()
