#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Test frames on a dom0 interface, for the network tests:
#   pkt.py capture IFACE N          print "captured K sizes [...]" (ethertype 0x88b5)
#   pkt.py inject IFACE N SIZE [VLAN [MARK]]
#                                   send N frames (payload: number, then i ^ number),
#                                   802.1Q-tagged VLAN if given (and not 0); a frame's
#                                   number is MARK (default VLAN) << 16 | i
#   pkt.py vlans IFACE SECONDS [STOPFILE]
#                                   listen SECONDS (or until STOPFILE exists), print
#                                   "frames K marks [...] tags [...]":
#                                   distinct frames received (ethertype 0x88b5), their
#                                   senders' MARKs and the VLAN tags they came with
import os, socket, struct, sys, time

ETH_P_ALL, SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 3, 263, 8, 0x10
PACKET_OUTGOING = 4

def capture(iface, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    s.bind((iface, 0))
    s.settimeout(5)
    seen = {}
    print("ready", flush=True)
    try:
        while len(seen) < n:
            f = s.recv(70000)
            num = struct.unpack('<I', f[14:18])[0]
            seen[num] = len(f)
    except socket.timeout:
        pass
    print("captured %d sizes %s" % (len(seen), sorted(set(seen.values()))), flush=True)

def inject(iface, n, size, vlan=0, mark=None):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    tag = struct.pack('>HH', 0x8100, vlan) if vlan else b''
    base = (vlan if mark is None else mark) << 16
    for i in range(n):
        body = bytes(((j ^ i) & 0xff) for j in range(size - 18))
        s.send(b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + tag + b'\x88\xb5' +
               struct.pack('<I', base | i) + body)
        time.sleep(0.001)

def vlans(iface, seconds, stop=None):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.bind((iface, 0))
    end = time.time() + seconds
    seen, tags = set(), set()
    print("ready", flush=True)
    while True:
        left = end - time.time()
        if left <= 0 or (stop and os.path.exists(stop)):
            break
        s.settimeout(min(left, 0.1))
        try:
            f, anc, _, addr = s.recvmsg(70000, socket.CMSG_SPACE(20))
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        tag = None
        for level, typ, data in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA:
                status, _, _, _, _, tci = struct.unpack('IIIHHH', data[:18])
                if status & TP_STATUS_VLAN_VALID:
                    tag = tci & 0xfff
        etype, off = struct.unpack('>H', f[12:14])[0], 14
        if etype == 0x8100:	# still in the frame: not taken off by the kernel
            tag, etype, off = struct.unpack('>H', f[14:16])[0] & 0xfff, \
                struct.unpack('>H', f[16:18])[0], 18
        if etype != 0x88b5:
            continue
        seen.add(struct.unpack('<I', f[off:off + 4])[0])
        if tag is not None:
            tags.add(tag)
    print("frames %d marks %s tags %s" %
          (len(seen), sorted(set(x >> 16 for x in seen)), sorted(tags)), flush=True)

if sys.argv[1] == 'capture':
    capture(sys.argv[2], int(sys.argv[3]))
elif sys.argv[1] == 'vlans':
    vlans(sys.argv[2], float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
else:
    inject(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
           *(int(a) for a in sys.argv[5:7]))
