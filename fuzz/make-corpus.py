#!/usr/bin/env python3
"""Regenerates the fuzz targets' seed corpora in fuzz/corpus/<target>/ from the crate's own
good files and from a paper store made by the release binary. Run from the crate root, after
`cargo build --release`: python3 fuzz/make-corpus.py (IPOW_BIN=path picks another binary)

Seeds are kept small (a few KiB each) so that a mutation runs in microseconds; the bad-input
corpus of tests/data/bad/ is added too, since every one of those files is a malformed input a
target must refuse cleanly.
"""
import glob, json, os, shutil, struct, subprocess, tempfile

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
ipow = os.environ.get("IPOW_BIN", os.path.join(root, "target", "release", "ipow"))
corpus = os.path.join(here, "corpus")

def path(p):
    return os.path.join(root, p)

def read(p, mode="r"):
    with open(path(p), mode) as f:
        return f.read()

def put(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(corpus, target, name), mode, newline="" if mode == "w" else None) as f:
        f.write(data)

def bad(target, prefix):
    for p in sorted(glob.glob(path("tests/data/bad/" + prefix + "*"))):
        put(target, "bad-" + os.path.basename(p), open(p, "rb").read())

def run(*args):
    return subprocess.run([ipow, *args], check=True, capture_output=True, text=True).stdout

# Everything made here is remade; seeds named regress-* (inputs a fuzzer found, kept by hand)
# stay.
for made in glob.glob(os.path.join(corpus, "*", "*")):
    if not os.path.basename(made).startswith("regress-"):
        os.remove(made)
tmp = tempfile.mkdtemp()

# Datasets: a small generated market in both forms.
small = os.path.join(tmp, "small.ipowm")
run("generate", "--grid", path("datasets/grids/pglib_opf_case14_ieee.m"), "--participants", "20",
    "--contracts", "6", "--seed", "3", "--invalid", "0.3", "--defaults", "0.3", "--out", small)
binary = open(small, "rb").read()
put("dataset_binary", "small.ipowm", binary)
# The bad corpus's kinds of damage, made from the small file (tests/data/bad/ holds the big ones).
put("dataset_binary", "truncated.ipowm", binary[: len(binary) * 2 // 3])
flipped = bytearray(binary)
flipped[len(flipped) // 2] ^= 0x10
put("dataset_binary", "flipped.ipowm", bytes(flipped))
huge = bytearray(binary)
huge[20:28] = struct.pack("<Q", 2**62)  # the members count
put("dataset_binary", "huge-count.ipowm", bytes(huge))
put("dataset_binary", "foreign.ipowm", b"%PDF-1.7\n" + b"\0" * 200)
small_json = os.path.join(tmp, "small.json")
run("dataset", "convert", "--dataset", small, "--out", small_json,
    "--grid", path("datasets/grids/pglib_opf_case14_ieee.m"))
# regress-format1.json (kept, not made here): the same market in JSON format 1, whose buses
# were 0-based indices.
put("dataset_json", "small.json", open(small_json).read())

# Readings, the paper's market, scenarios, trades, grids.
for name in ["readings-full-delivery.json", "readings-defaults.json"]:
    put("readings", name, read("datasets/paper/" + name))
bad("readings", "readings-")
put("paper_market", "market.json", read("datasets/paper/market.json"))
bad("paper_market", "market-")
for p in sorted(glob.glob(path("datasets/scenarios/*.json"))):
    put("scenario", os.path.basename(p), open(p).read())
bad("scenario", "scenario-")
put("trades", "two.json", json.dumps({"trades": [
    {"seller_bus": 1, "buyer_bus": 14, "mw": 12.5}, {"seller_bus": 2, "buyer_bus": 9, "mw": 3}]}))
bad("trades", "trades-")
put("matpower", "case14.m", read("datasets/grids/pglib_opf_case14_ieee.m"))
bad("matpower", "grid-")

# The store: the paper's period, its log, its contracts and proofs of them.
store = os.path.join(tmp, "store")
# A fixed node secret (public: it keys this seed store only), so the seeds repeat byte for byte.
secret = os.path.join(tmp, "secret")
with open(secret, "w") as f:
    f.write("07" * 32 + "\n")
os.chmod(secret, 0o600)
run("paper", "--store", store, "--secret", secret)
log = open(os.path.join(store, "ledger.log"), "rb").read()
put("store_log", "paper.log", log)
ids, at = [], 0
while at < len(log):
    n, kind = struct.unpack(">IB", log[at:at + 5])
    payload = log[at + 5:at + 5 + n]
    if kind == 2:  # consensus: header 128, nonce 8, count 4, entries
        count = struct.unpack(">I", payload[136:140])[0]
        p = 140
        for _ in range(count):
            ids.append(payload[p:p + 32].hex())
            proofs = struct.unpack(">H", payload[p + 32:p + 34])[0]
            p += 34 + proofs * 41
    if kind == 3 and not glob.glob(os.path.join(corpus, "contract", "*")):
        p = 94 + 4
        length = struct.unpack(">I", payload[p:p + 4])[0]
        put("contract", "signed.bin", payload[p + 4:p + 4 + length])
        put("contract", "unsigned.bin", payload[p + 4:p + 4 + length - 3 * 64])
    at += 5 + n + 8
head = json.loads(run("audit", "--store", store, "--json"))["head"]
for k, cid in enumerate(ids[:3]):
    put("proof", f"proof-{k}.txt", head + "\n" + run("prove", "--store", store, "--contract", cid))

# The signature rule: a 32-byte key seed, a 96-byte mask XORed onto the signature then the key,
# a message. An honest signature, and one bit flipped in R, S's high bit, S, and the key.
def sig_seed(name, seed, flips, msg):
    mask = bytearray(96)
    for at, bits in flips:
        mask[at] ^= bits
    put("signature_rule", name, bytes([seed]) * 32 + bytes(mask) + msg)
sig_seed("honest.bin", 1, [], b"a contract")
sig_seed("r-flipped.bin", 2, [(3, 0x10)], b"another")
sig_seed("s-high-bit.bin", 3, [(63, 0x80)], b"x")
sig_seed("key-flipped.bin", 4, [(70, 0x01)], b"key")
sig_seed("s-flipped.bin", 5, [(40, 0x01)], b"")
# The cluster's messages (src/cluster/wire.rs): keys, a context with one cut on case14 (14
# buses), asks by index and with a contract, answers with and without a proof.
signed = open(os.path.join(corpus, "contract", "signed.bin"), "rb").read()
u32 = lambda x: struct.pack(">I", x)
u64 = lambda x: struct.pack(">Q", x)
put("wire", "keys.bin", b"\x01" + u32(2) + u32(1) + bytes(range(32)) + u32(4) + bytes(32))
row = b"".join(struct.pack(">d", 0.05 * (i - 7)) for i in range(14))
cut = u32(1) + u32(2) + b"\x01" + u64(5) + u32(9) + row
context = u32(2) + u64(5) + u64(7) + u32(14) + u32(1) + u32(3) + u32(1) + cut
put("wire", "context.bin", b"\x02" + u64(3) + context)
put("wire", "context-no-grid.bin", b"\x02" + u64(0))
ask = lambda pos, tx, v, flags: u32(pos) + u32(tx) + u32(v) + bytes([flags])
put("wire", "asks-index.bin", b"\x03" + u64(3) + u32(2) + ask(0, 17, 4, 0) + ask(1, 18, 6, 1))
put("wire", "asks-bytes.bin", b"\x03" + u64(3) + u32(1) + ask(0, 17, 4, 2) + u32(len(signed)) + signed)
proof = u32(17) + u32(4) + b"\x00" + bytes(range(32, 64))
stats = b"".join(u64(x) for x in [6, 0, 1, 0, 0] + [0, 0, 1] + [0] * 8)
put("wire", "answers.bin", b"\x04" + u32(2) + u32(0) + b"\x03" + proof + u32(1) + b"\x01" + stats + u64(1500000) + u64(52428800))
shutil.rmtree(tmp)
for t in sorted(os.listdir(corpus)):
    files = os.listdir(os.path.join(corpus, t))
    print(t, len(files), "files,", sum(os.path.getsize(os.path.join(corpus, t, f)) for f in files), "bytes")
