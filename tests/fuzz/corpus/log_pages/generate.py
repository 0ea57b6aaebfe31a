#!/usr/bin/env python3
"""Writes the seed corpus of log_pages_fuzzer next to this script (python3 generate.py).

Each seed is one valid structure at the spec's offsets: Discovery logs (NVMe-oF 1.1 Figures 39-40),
ANA logs (Base 2.0 Figures 230-231), a namespace ID descriptor list (Figure 279), an active NSID
list, Identify Controller (Figure 275) and Identify Namespace (NVM Command Set Figure 97). The
fuzzer feeds every input to every parser, so any seed also exercises the others' error paths.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def pad(b, n, fill=b"\0"):
    assert len(b) <= n
    return b + fill * (n - len(b))


def disc_entry(trtype=3, adrfam=1, subtype=2, treq=0, portid=1, cntlid=0xFFFF, asqsz=32,
               eflags=0, trsvcid="4420", subnqn="nqn.2026-01.io.test:subsys1",
               traddr="192.168.1.10", sectype=0):
    e = struct.pack("<BBBBHHHH", trtype, adrfam, subtype, treq, portid, cntlid, asqsz, eflags)
    e = pad(e, 32) + pad(trsvcid.encode(), 32, b" ")
    e = pad(e, 256) + pad(subnqn.encode(), 256)
    e += pad(traddr.encode(), 256, b" ")
    e += pad(bytes([sectype]), 256)
    assert len(e) == 1024
    return e


def disc_log(genctr, entries, recfmt=0):
    h = pad(struct.pack("<QQH", genctr, len(entries), recfmt), 1024)
    return h + b"".join(entries)


def ana_log(chgcnt, groups, with_nsids=True):
    out = struct.pack("<QH", chgcnt, len(groups)) + b"\0" * 6
    for grpid, state, nsids, gchg in groups:
        out += pad(struct.pack("<IIQB", grpid, len(nsids), gchg, state), 32)
        if with_nsids:
            out += b"".join(struct.pack("<I", n) for n in nsids)
    return out


def ns_desc(nidt, value):
    return struct.pack("<BBH", nidt, len(value), 0) + value


def id_ctrl():
    b = bytearray(4096)
    struct.pack_into("<HH", b, 0, 0x1B36, 0x1AF4)
    b[4:24] = pad(b"SN-0042", 20, b" ")
    b[24:64] = pad(b"nvmf-ublk test target", 40, b" ")
    b[64:72] = pad(b"1.2.3", 8, b" ")
    b[73:76] = bytes([0x38, 0x25, 0x00])
    b[76] = 0x0B  # CMIC
    b[77] = 5  # MDTS
    struct.pack_into("<HI", b, 78, 1, 0x00020000)  # CNTLID, VER
    b[111] = 1  # CNTRLTYPE
    struct.pack_into("<HHH", b, 128, 1, 20, 300)  # CRDT1..3
    struct.pack_into("<H", b, 320, 10)  # KAS
    b[342] = 10  # ANATT
    b[343] = 0x47  # ANACAP
    struct.pack_into("<II", b, 344, 128, 64)  # ANAGRPMAX, NANAGRPID
    struct.pack_into("<BBHIHHBB", b, 512, 0x66, 0x44, 128, 1024, 0x010C, 1, 0, 0x07)
    struct.pack_into("<I", b, 536, 0x00100001)  # SGLS
    nqn = b"nqn.2026-01.io.test:subsys1"
    b[768:768 + len(nqn)] = nqn
    struct.pack_into("<IIHBBH", b, 1792, 260, 1, 0, 0, 1, 1)
    return bytes(b)


def id_ns():
    b = bytearray(4096)
    struct.pack_into("<QQQBBB", b, 0, 0x200000, 0x200000, 0x1000, 0x11, 2, 0x01)
    b[30] = 1  # NMIC
    struct.pack_into("<HHHHH", b, 64, 7, 7, 15, 15, 31)  # NPWG..NOWS
    struct.pack_into("<I", b, 92, 3)  # ANAGRPID
    b[104:120] = bytes(range(0xA0, 0xB0))  # NGUID
    b[120:128] = bytes(range(0x10, 0x18))  # EUI64
    struct.pack_into("<HBB HBB HBB", b, 128, 0, 9, 0, 0, 12, 0, 8, 12, 0)
    return bytes(b)


SEEDS = {
    "discovery_3_entries": disc_log(3, [
        disc_entry(),
        disc_entry(subtype=1, adrfam=2, portid=7, trsvcid="8009", traddr="fe80::1",
                   subnqn="nqn.2014-08.org.nvmexpress.discovery"),
        disc_entry(subtype=3, trsvcid="8009", eflags=3, treq=5, sectype=2,
                   subnqn="nqn.2014-08.org.nvmexpress.discovery"),
    ]),
    "discovery_empty": disc_log(5, []),
    "discovery_referral": disc_log(1, [disc_entry(subtype=1, traddr="10.0.0.2", trsvcid="8009",
                                                  subnqn="nqn.2014-08.org.nvmexpress.discovery")]),
    "ana_3_groups": ana_log(77, [(1, 1, [1, 2, 3], 5), (2, 3, [], 6), (9, 0x0F, [10], 0)]),
    "ana_rgo": ana_log(3, [(1, 2, [], 0), (2, 4, [], 0)], with_nsids=False),
    "ns_descriptors": (ns_desc(1, bytes(range(0x10, 0x18))) + ns_desc(2, bytes(range(0xA0, 0xB0)))
                       + ns_desc(3, bytes(range(16))) + ns_desc(4, b"\0") + b"\0" * 4),
    "active_ns_list": b"".join(struct.pack("<I", n) for n in (1, 2, 3, 10, 0)),
    "identify_controller": id_ctrl(),
    "identify_namespace": id_ns(),
}

if __name__ == "__main__":
    for name, data in SEEDS.items():
        with open(os.path.join(HERE, name + ".bin"), "wb") as f:
            f.write(data)
