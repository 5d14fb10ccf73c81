#!/usr/bin/env python3
"""Runs inside the test bed's L1 (bed_vfio.py starts it): proves that the bed's VFIO and
emulated IOMMU carry the type1 flow the passthrough code needs, with QEMU's edu device and
nothing but the kernel's UAPI (Python stdlib, ioctls by number from <linux/vfio.h>).

usage: bed_vfio_probe.py BDF GROUP

Container -> group viable -> SET_CONTAINER -> SET_IOMMU(TYPE1v2) -> device fd -> Memory and
Bus Master on -> BAR0 (edu's ID and liveness registers) -> MAP_DMA two buffers at IOVAs
below edu's 28-bit DMA mask -> a DMA round trip RAM -> edu -> RAM through them -> DMA to an
unmapped IOVA, into a read-only mapping and after UNMAP_DMA leave memory untouched.  Prints
key=value lines; exits 0 when every step did what it should, 3 when SET_IOMMU is refused
with EPERM (no interrupt remapping and allow_unsafe_interrupts off), 1 otherwise.
"""
import ctypes
import fcntl
import mmap
import os
import struct
import sys
import time

VFIO = ord(";") << 8
GET_API_VERSION, CHECK_EXTENSION, SET_IOMMU = VFIO | 100, VFIO | 101, VFIO | 102
GROUP_GET_STATUS, GROUP_SET_CONTAINER, GROUP_GET_DEVICE_FD = VFIO | 103, VFIO | 104, VFIO | 106
DEVICE_GET_INFO, DEVICE_GET_REGION_INFO = VFIO | 107, VFIO | 108
IOMMU_MAP_DMA, IOMMU_UNMAP_DMA = VFIO | 113, VFIO | 114
TYPE1_IOMMU, TYPE1V2_IOMMU = 1, 3
GROUP_VIABLE = 1
DMA_READ, DMA_WRITE = 1, 2
REGION_BAR0, REGION_CONFIG = 0, 7

EDU_ID, EDU_LIVENESS = 0x00, 0x04
EDU_DMA_SRC, EDU_DMA_DST, EDU_DMA_COUNT, EDU_DMA_CMD = 0x80, 0x88, 0x90, 0x98
EDU_BUFFER = 0x40000  # the device's DMA buffer, in its own address space
CMD_START, CMD_TO_RAM = 1, 2
LEN = 2048  # QEMU 7.2 aborts on a transfer that ends exactly at the buffer's end
IOVA_A, IOVA_B, IOVA_RO, IOVA_NONE = 0x100000, 0x200000, 0x300000, 0x400000
FAILED = []


def say(key, value):
    print(f"{key}={value}", flush=True)


def expect(cond, what):
    say(what, "ok" if cond else "FAILED")
    if not cond:
        FAILED.append(what)
    return cond


def region(dev, index):
    buf = bytearray(struct.pack("<IIIIQQ", 32, 0, index, 0, 0, 0))
    fcntl.ioctl(dev, DEVICE_GET_REGION_INFO, buf)
    _, flags, _, _, size, offset = struct.unpack("<IIIIQQ", buf)
    return flags, size, offset


def buffer(size=1 << 20):
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return m, ctypes.addressof(ctypes.c_char.from_buffer(m))


def physical(vaddr):
    """The physical address behind a virtual one (/proc/self/pagemap; root sees PFNs)."""
    with open("/proc/self/pagemap", "rb") as f:
        f.seek(vaddr // mmap.PAGESIZE * 8)
        entry, = struct.unpack("<Q", f.read(8))
    return (entry & ((1 << 55) - 1)) * mmap.PAGESIZE + vaddr % mmap.PAGESIZE


def map_dma(container, vaddr, iova, size, flags):
    fcntl.ioctl(container, IOMMU_MAP_DMA, bytearray(struct.pack("<IIQQQ", 32, flags, vaddr,
                                                                  iova, size)))


class Edu:
    def __init__(self, dev, bar0_offset):
        self.dev, self.base = dev, bar0_offset

    def read(self, reg):
        return struct.unpack("<I", os.pread(self.dev, 4, self.base + reg))[0]

    def write(self, reg, value):
        os.pwrite(self.dev, struct.pack("<I", value), self.base + reg)

    def dma(self, src, dst, count, to_ram, timeout=30.0):
        """One edu DMA; True when the device reports it done (it does so whether or not
        the IOMMU let it through)."""
        self.write(EDU_DMA_SRC, src)
        self.write(EDU_DMA_DST, dst)
        self.write(EDU_DMA_COUNT, count)
        self.write(EDU_DMA_CMD, CMD_START | (CMD_TO_RAM if to_ram else 0))
        deadline = time.monotonic() + timeout
        while self.read(EDU_DMA_CMD) & CMD_START:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def main():
    bdf, group = sys.argv[1], sys.argv[2]
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    say("api_version", fcntl.ioctl(container, GET_API_VERSION, 0))
    say("type1", fcntl.ioctl(container, CHECK_EXTENSION, TYPE1_IOMMU))
    say("type1v2", fcntl.ioctl(container, CHECK_EXTENSION, TYPE1V2_IOMMU))
    grp = os.open(f"/dev/vfio/{group}", os.O_RDWR)
    status = bytearray(struct.pack("<II", 8, 0))
    fcntl.ioctl(grp, GROUP_GET_STATUS, status)
    if not expect(struct.unpack("<II", status)[1] & GROUP_VIABLE, "group_viable"):
        return 1
    fcntl.ioctl(grp, GROUP_SET_CONTAINER, bytearray(struct.pack("<i", container)))
    try:
        fcntl.ioctl(container, SET_IOMMU, TYPE1V2_IOMMU)
    except PermissionError:
        # vfio_iommu_type1 refuses an IOMMU without interrupt remapping unless its
        # allow_unsafe_interrupts parameter is set
        say("set_iommu", "EPERM")
        return 3
    say("set_iommu", "ok")
    dev = fcntl.ioctl(grp, GROUP_GET_DEVICE_FD, bytearray(bdf.encode() + b"\0"))
    info = bytearray(struct.pack("<IIII", 16, 0, 0, 0))
    fcntl.ioctl(dev, DEVICE_GET_INFO, info)
    _, flags, regions, irqs = struct.unpack("<IIII", info)
    say("device_flags", hex(flags))
    say("regions", regions)
    say("irqs", irqs)

    _, _, cfg = region(dev, REGION_CONFIG)
    vendor, device = struct.unpack("<HH", os.pread(dev, 4, cfg))
    expect((vendor, device) == (0x1234, 0x11E8), "config_id")
    command, = struct.unpack("<H", os.pread(dev, 2, cfg + 4))
    os.pwrite(dev, struct.pack("<H", command | 0x6), cfg + 4)  # Memory Space, Bus Master

    bar_flags, bar_size, bar_off = region(dev, REGION_BAR0)
    say("bar0_size", hex(bar_size))
    edu = Edu(dev, bar_off)
    expect(edu.read(EDU_ID) == 0x010000ED, "bar0_id")
    edu.write(EDU_LIVENESS, 0x12345678)
    expect(edu.read(EDU_LIVENESS) == (~0x12345678 & 0xFFFFFFFF), "bar0_liveness")

    a, a_va = buffer()
    b, b_va = buffer()
    ro, ro_va = buffer()
    pattern = bytes((i * 7 + 3) & 0xFF for i in range(LEN))
    a[:LEN] = pattern
    map_dma(container, a_va, IOVA_A, len(a), DMA_READ | DMA_WRITE)
    map_dma(container, b_va, IOVA_B, len(b), DMA_READ | DMA_WRITE)
    map_dma(container, ro_va, IOVA_RO, len(ro), DMA_READ)
    say("iova_a", hex(IOVA_A))
    say("phys_a", hex(physical(a_va)))
    say("iova_b", hex(IOVA_B))
    say("phys_b", hex(physical(b_va)))

    # the round trip through translated IOVAs
    expect(edu.dma(IOVA_A, EDU_BUFFER, LEN, to_ram=False), "dma_to_edu_done")
    expect(edu.dma(EDU_BUFFER, IOVA_B, LEN, to_ram=True), "dma_to_ram_done")
    expect(b[:LEN] == pattern, "dma_round_trip")
    # what the IOMMU must stop: nothing mapped, read-only, unmapped again
    edu.dma(EDU_BUFFER, IOVA_NONE, LEN, to_ram=True)
    edu.dma(EDU_BUFFER, IOVA_RO, LEN, to_ram=True)
    expect(ro[:LEN] == bytes(LEN), "dma_read_only_blocked")
    b[:LEN] = bytes(LEN)
    fcntl.ioctl(container, IOMMU_UNMAP_DMA,
                bytearray(struct.pack("<IIQQ", 24, 0, IOVA_B, len(b))))
    edu.dma(EDU_BUFFER, IOVA_B, LEN, to_ram=True)
    expect(b[:LEN] == bytes(LEN), "dma_after_unmap_blocked")
    say("failed", ",".join(FAILED) or "none")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
