#!/usr/bin/env python3
"""Writes the seed corpora of the virt_proto and domxml fuzz targets.

usage: tests/fuzz/virt_seeds.py tests/fuzz/corpus

virt_proto seeds are whole client conversations in libvirt's remote protocol (a flags byte,
then packets): the handshake virsh sends, then the calls of one virsh command each (list,
dominfo, define, start, vcpupin, dumpxml, events, ...), keepalive, and a few broken ones.
domxml seeds are domain XML documents using every element lockstep reads.
"""
import os
import struct
import sys

REMOTE, KEEPALIVE = 0x20008086, 0x6b656570
UUID = bytes.fromhex("8f3169e49e175347a62347fff434bb04")

XML = ("<domain type='kvm'><name>fz</name><uuid>8f3169e4-9e17-5347-a623-47fff434bb04</uuid>"
       "<memory unit='MiB'>16</memory><currentMemory unit='KiB'>16384</currentMemory>"
       "<vcpu placement='static' cpuset='0-1'>2</vcpu>"
       "<cputune><vcpupin vcpu='1' cpuset='0'/></cputune>"
       "<metadata><lockstep:vm xmlns:lockstep='urn:lockstep:domain:1'>"
       "<lockstep:sched policy='gang' quantum_us='5000' skew_us='2000'/>"
       "<lockstep:pvlock enabled='yes' kvm_features='pv_unhalt,steal_time' "
       "pause_exits='auto'/><lockstep:irq steering='yes'/></lockstep:vm></metadata>"
       "<os><type arch='x86_64' machine='lockstep'>hvm</type><kernel>/boot/fz.elf</kernel>"
       "<cmdline>heartbeat_ms=10</cmdline></os>"
       "<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>"
       "<on_crash>restart</on_crash><features><acpi/></features>"
       "<devices><emulator>/usr/bin/lockstep-vm</emulator>"
       "<serial type='file'><source path='/tmp/fz.log'/><target port='0'/></serial>"
       "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
       "<address domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></source></hostdev>"
       "</devices></domain>")


def u32(v):
    return struct.pack(">I", v & 0xffffffff)


def s(text):
    b = text.encode()
    return u32(len(b)) + b + b"\0" * (-len(b) % 4)


def dom(name="fz", dom_id=-1):
    return s(name) + UUID + u32(dom_id)


class Conv:
    def __init__(self):
        self.out = b""
        self.serial = 0

    def call(self, proc, payload=b"", prog=REMOTE, type_=0):
        body = struct.pack(">IIiiIi", prog, 1, proc, type_, self.serial, 0) + payload
        self.serial += 1
        self.out += u32(4 + len(body)) + body
        return self

    def handshake(self):
        return (self.call(66).call(60, u32(10)).call(1, u32(1) + s("lockstep:///system")
                                                     + u32(0))
                .call(60, u32(14)).call(60, u32(15)))


def conversations():
    yield "list", Conv().handshake().call(273, u32(1) + u32(3)).call(212, dom() + u32(0)).call(2)
    yield "define", (Conv().handshake().call(11, s(XML)).call(23, s("fz"))
                     .call(14, dom() + u32(0)).call(14, dom() + u32(2)).call(2))
    yield "dominfo", (Conv().handshake().call(11, s(XML)).call(23, s("fz")).call(19, dom())
                      .call(16, dom()).call(151, dom()).call(15, dom())
                      .call(183, dom() + u32(0)).call(122).call(426, dom() + u32(0)))
    yield "start", (Conv().handshake().call(11, s(XML)).call(9, dom()).call(24, UUID)
                    .call(196, dom() + u32(8)).call(12, dom()).call(234, dom() + u32(1)))
    yield "lifecycle", (Conv().handshake().call(10, s(XML.replace("fz", "tz", 1)) + u32(0))
                        .call(33, dom("tz")).call(258, dom("tz") + u32(1))
                        .call(27, dom("tz") + u32(0)).call(245, dom("tz") + u32(0)))
    yield "vcpus", (Conv().handshake().call(11, s(XML)).call(293, u32(0) + u32(0) + u32(0))
                    .call(6).call(20, dom() + u32(2) + u32(1))
                    .call(230, dom() + u32(2) + u32(1) + u32(2))
                    .call(26, dom() + u32(1) + u32(1) + b"\x01\0\0\0")
                    .call(225, dom() + u32(0) + u32(1) + b"\x03\0\0\0" + u32(2))
                    .call(200, dom() + u32(6)).call(18, dom()))
    yield "undefine", (Conv().handshake().call(11, s(XML)).call(29, dom() + u32(1))
                       .call(150, dom()).call(187, dom() + u32(0)).call(231, dom() + u32(0)))
    yield "host", (Conv().handshake().call(3).call(4).call(157).call(59).call(110).call(6)
                   .call(7).call(5, u32(0)).call(342).call(149).call(51).call(25)
                   .call(37, u32(10)).call(21, u32(10)))
    yield "events", (Conv().handshake().call(316, u32(0) + u32(0)).call(316, u32(1) + u32(0))
                     .call(11, s(XML)).call(316, u32(0) + u32(1) + dom())
                     .call(9, dom()).call(317, u32(0)).call(35, dom()))
    yield "keepalive", Conv().handshake().call(1, prog=KEEPALIVE, type_=2).call(22, u32(1))
    yield "readonly", Conv().call(66).call(1, u32(1) + s("lockstep:///system") + u32(1)) \
        .call(11, s(XML)).call(29, dom() + u32(1))
    yield "truncated", Conv().handshake().call(23, u32(100) + b"fz")
    yield "qemu", Conv().handshake().call(1, b"", prog=0x20008087)
    # virsh console: OPEN_CONSOLE (refused, the fuzz daemon's VMs never run), then stream
    # packets of each status for its serial and for others
    conv = Conv().handshake().call(11, s(XML)).call(9, dom())
    serial = conv.serial
    conv.call(201, dom() + u32(0) + u32(0)).call(201, dom() + u32(1) + s("serial0") + u32(1))
    for status, payload in ((2, b"ls\r"), (0, b""), (1, b""), (2, b"")):
        body = struct.pack(">IIiiIi", REMOTE, 1, 201, 3, serial + 1, status) + payload
        conv.out += u32(4 + len(body)) + body
    yield "console", conv.call(201, dom() + u32(1) + s("serial9") + u32(0)).call(2)


def main():
    root = sys.argv[1]
    for target in ("virt_proto", "domxml"):
        os.makedirs(os.path.join(root, target), exist_ok=True)
    for name, conv in conversations():
        for flags in (0, 0x3c):  # whole, and 8-byte pieces
            with open(os.path.join(root, "virt_proto", f"{name}-{flags:02x}"), "wb") as f:
                f.write(bytes([flags]) + conv.out)
    docs = {
        "full": XML,
        "minimal": "<domain type='kvm'><name>m</name><vcpu>1</vcpu><os><type>hvm</type>"
                   "<kernel>/k</kernel></os></domain>",
        "units": XML.replace("<memory unit='MiB'>16</memory><currentMemory unit='KiB'>16384"
                             "</currentMemory>", "<memory unit='G'>1</memory>"),
        "console": XML.replace("<serial", "<console").replace("</serial>", "</console>"),
    }
    for name, text in docs.items():
        with open(os.path.join(root, "domxml", name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
