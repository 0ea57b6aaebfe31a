#!/usr/bin/env python3
"""Writes the seed corpus of pdu_parser_fuzzer (corpus/pdu_parser/): valid controller byte streams
that take a host queue from ICResp through Connect to completed reads and writes, with and without
digests, plus raw-parser streams. Re-run after changing the fuzzer's input layout."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pdu_parser")


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def pdu(ptype, psh, data=b"", flags=0, hd=False, dd=False):
    hlen = 8 + len(psh)
    hdr_end = hlen + (4 if hd else 0)
    pdo = hdr_end if data else 0
    plen = (pdo + len(data) + (4 if dd and data else 0)) if data else hdr_end
    f = flags | (1 if hd else 0) | (2 if dd and data else 0)
    h = struct.pack("<BBBBI", ptype, f, hlen, pdo, plen) + psh
    out = h + (struct.pack("<I", crc32c(h)) if hd else b"")
    if data:
        out += data + (struct.pack("<I", crc32c(data)) if dd else b"")
    return out


def icresp(hd, dd, maxh2c=4096):
    return pdu(0x01, struct.pack("<HBBI", 0, 0, (1 if hd else 0) | (2 if dd else 0), maxh2c) + bytes(112))


def resp(cid, dw0=0, hd=False):
    return pdu(0x05, struct.pack("<IIHHHH", dw0, 0, 0xFFFF, 1, cid, 0), hd=hd)


def c2h(cid, off, data, flags=0x04, hd=False, dd=False):
    return pdu(0x07, struct.pack("<HHII4x", cid, 0, off, len(data)), data, flags, hd, dd)


def r2t(cid, ttag, off, length, hd=False):
    return pdu(0x09, struct.pack("<HHII4x", cid, ttag, off, length), hd=hd)


def host_stream(hd, dd):
    # Slot indices come from a stack (LIFO, 0 first); depth 7 -> 3 index bits; CID = gen << 3 | slot.
    cid = lambda slot, gen=1: (gen << 3) | slot
    s = icresp(hd, dd)
    s += resp(cid(0), dw0=1, hd=hd)                     # Connect (slot 0, freed on completion)
    read = cid(0, 2)                                     # the first I/O reuses slot 0
    s += c2h(read, 0, bytes(range(256)) * 8, 0, hd, dd)     # Read, two C2HData
    s += c2h(read, 2048, bytes(2048), 0x04, hd, dd)
    s += resp(read, hd=hd)
    s += r2t(cid(1), 7, 0, 8192, hd) + r2t(cid(1), 8, 8192, 8192, hd)  # 16 KiB write by R2T
    s += resp(cid(1), hd=hd) + resp(cid(2), hd=hd) + resp(cid(3), hd=hd)
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    for hd in (False, True):
        for dd in (False, True):
            mode = 1 | (2 if hd else 0) | (4 if dd else 0)
            # Fed in small pieces so the Connect response is not in the ICResp's piece (the queue
            # only sends Connect after the ICResp, and the fuzzer drains sends between pieces).
            seeds[f"host_hd{int(hd)}_dd{int(dd)}_frag7"] = bytes([mode, 6]) + host_stream(hd, dd)
            seeds[f"host_hd{int(hd)}_dd{int(dd)}_frag128"] = bytes([mode, 127]) + host_stream(hd, dd)
    raw = resp(1) + c2h(2, 0, b"abcdefgh", 0x0C) + r2t(3, 1, 0, 512)
    raw += pdu(0x03, struct.pack("<HI10x", 2, 0))  # C2HTermReq
    seeds["raw_c2h"] = bytes([0, 255]) + raw
    seeds["raw_c2h_digests"] = bytes([6, 3]) + resp(1, hd=True) + c2h(2, 0, b"xyz", 0x04, True, True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
