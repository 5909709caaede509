#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Test frames on a dom0 interface, for the network tests:
#   pkt.py capture IFACE N          print "captured K sizes [...]" (ethertype 0x88b5)
#   pkt.py inject IFACE N SIZE      send N frames (payload: number, then i ^ number)
import socket, struct, sys, time

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

def inject(iface, n, size):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i in range(n):
        body = bytes(((j ^ i) & 0xff) for j in range(size - 18))
        s.send(b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + b'\x88\xb5' +
               struct.pack('<I', i) + body)
        time.sleep(0.001)

if sys.argv[1] == 'capture':
    capture(sys.argv[2], int(sys.argv[3]))
else:
    inject(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
