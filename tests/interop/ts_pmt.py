# SPDX-License-Identifier: MPL-2.0
"""The PMT of an MPEG-TS file, read and written on its own (not with the
worker's code), for tests/broadcast_io.rs.

    ts_pmt.py dump FILE            -> JSON {"0x151": "5605...", ...}: every
                                      stream's ES_info, by PID, of its PMTs
                                      (an error unless all are the same)
    ts_pmt.py set FILE PID HEX...  -> every PMT of FILE (in place) with the
                                      ES_info of stream PID set to HEX
"""
import json
import sys

PACKET = 188


def crc32_mpeg2(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def section_at(packet):
    """(offset, section bytes) of the section a packet starts, or None."""
    if not packet[1] & 0x40 or not packet[3] & 0x10:
        return None
    start = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
    start += 1 + packet[start]
    length = 3 + (((packet[start + 1] & 0x0F) << 8) | packet[start + 2])
    return start, bytes(packet[start:start + length])


def pid_of(packet):
    return ((packet[1] & 0x1F) << 8) | packet[2]


def streams(section):
    info_length = ((section[10] & 0x0F) << 8) | section[11]
    at, end, found = 12 + info_length, len(section) - 4, []
    while at + 5 <= end:
        pid = ((section[at + 1] & 0x1F) << 8) | section[at + 2]
        length = ((section[at + 3] & 0x0F) << 8) | section[at + 4]
        found.append((section[at], pid, section[at + 5:at + 5 + length]))
        at += 5 + length
    return found


def pmts(data):
    """Yields (packet offset, section offset in it, section) of every PMT,
    on the PID the first PAT names, before that PAT as well."""
    packets = range(0, len(data) - PACKET + 1, PACKET)
    pmt_pid = None
    for offset in packets:
        found = section_at(data[offset:offset + PACKET])
        if found is not None and pid_of(data[offset:offset + PACKET]) == 0:
            pmt_pid = ((found[1][10] & 0x1F) << 8) | found[1][11]
            break
    for offset in packets:
        packet = data[offset:offset + PACKET]
        found = section_at(packet)
        if found is not None and pid_of(packet) == pmt_pid and found[1][0] == 0x02:
            yield offset, found[0], found[1]


def with_info(section, pid, info):
    head = bytearray(section[:12 + (((section[10] & 0x0F) << 8) | section[11])])
    for kind, es_pid, es_info in streams(section):
        es_info = info if es_pid == pid else es_info
        head += bytes([kind, 0xE0 | es_pid >> 8, es_pid & 0xFF, 0xF0 | len(es_info) >> 8, len(es_info) & 0xFF])
        head += es_info
    length = len(head) + 4 - 3
    head[1] = (head[1] & 0xF0) | (length >> 8)
    head[2] = length & 0xFF
    return bytes(head) + crc32_mpeg2(head).to_bytes(4, "big")


def main():
    command, path = sys.argv[1], sys.argv[2]
    data = bytearray(open(path, "rb").read())
    if command == "dump":
        tables = set()
        for _, _, section in pmts(data):
            assert crc32_mpeg2(section) == 0, "the PMT's CRC"
            tables.add(json.dumps({hex(pid): info.hex() for _, pid, info in streams(section)}))
        if len(tables) != 1:
            sys.exit(f"{len(tables)} different PMTs: {tables}")
        print(tables.pop())
        return
    pid, info = int(sys.argv[3], 0), bytes.fromhex("".join(sys.argv[4:]))
    for offset, start, section in list(pmts(data)):
        new = with_info(section, pid, info)
        assert start + len(new) <= PACKET, "the PMT fits its packet"
        data[offset + start:offset + PACKET] = new + b"\xff" * (PACKET - start - len(new))
    open(path, "wb").write(data)


main()
