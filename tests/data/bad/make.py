#!/usr/bin/env python3
"""Regenerates the bad-input corpus in this directory from the good files in datasets/.

Each file is one way outside input goes wrong; tests/badinput.rs runs every one through the CLI
and says which command reads it and what its error must name. Run from the crate root:
python3 tests/data/bad/make.py
"""
import json, os, struct

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(os.path.dirname(here)))

def read(p, mode="r"):
    with open(os.path.join(root, p), mode) as f:
        return f.read()

def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(here, name), mode, newline="" if mode == "w" else None) as f:
        f.write(data)

readings = read("datasets/paper/readings-full-delivery.json")
write("readings-empty.json", "")
write("readings-bom.json", "\ufeff" + readings)
write("readings-crlf-truncated.json", readings.replace("\n", "\r\n")[: len(readings) // 2])
write("readings-nan.json", readings.replace('"delivered": "10.98"', '"delivered": NaN', 1))
write("readings-infinity.json", readings.replace('"received": "5.33"', '"received": 1e999', 1))
write("readings-negative.json", readings.replace('"delivered": "25.65"', '"delivered": "-25.65"', 1))
write("readings-duplicate.json", readings.replace('"contract": "f16"', '"contract": "f15"', 1))
write("readings-unknown.json", readings.replace('"contract": "f38"', '"contract": "f99"', 1))
write("readings-wrong-version.json", readings.replace("ipow-readings/1", "ipow-readings/9"))

market = read("datasets/paper/market.json")
write("market-unknown-account.json", market.replace('"address": "0x21"', '"address": "0xZZ"', 1))
write("market-negative-energy.json", market.replace('"10.98"', '"-10.98"', 1))
write("market-wrong-version.json", market.replace("ipow-paper-market/1", "ipow-paper-market/2"))

binary = read("datasets/markets/case57-2k.ipowm", "rb")
write("dataset-truncated.ipowm", binary[: len(binary) * 2 // 3])
flipped = bytearray(binary)
flipped[len(flipped) // 2] ^= 0x10
write("dataset-flipped.ipowm", bytes(flipped))
wrong = bytearray(binary)
wrong[8:10] = struct.pack("<H", 7)
write("dataset-wrong-version.ipowm", bytes(wrong))
huge = bytearray(binary)
huge[20:28] = struct.pack("<Q", 2**62)  # the members count
write("dataset-huge-count.ipowm", bytes(huge))
write("dataset-empty.ipowm", b"")
write("dataset-foreign.ipowm", b"%PDF-1.7\n" + b"\0" * 200)

grid = read("datasets/grids/pglib_opf_case14_ieee.m")
write("grid-truncated.m", grid[: grid.index("mpc.branch")] + "mpc.branch = [\n\t1\t2\t0.01938")
write("grid-nonnumeric.m", grid.replace("0.05917", "0.05x17", 1))
write("grid-zero-reactance.m", grid.replace("0.05917", "0", 1))
write("grid-empty.m", "")
write("grid-bom-crlf.m", "\ufeff" + grid.replace("\n", "\r\n"))

write("trades-unknown-bus.json", json.dumps({"trades": [{"seller_bus": 1, "buyer_bus": 9999, "mw": 5}]}))
write("trades-nan.json", '{"trades": [{"seller_bus": 1, "buyer_bus": 2, "mw": NaN}]}')

scenario = json.loads(read("datasets/scenarios/paper-market.json"))
write("scenario-empty.json", "")
write("scenario-unknown-field.json", json.dumps(dict(scenario, surprise=1)))
