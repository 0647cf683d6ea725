"""Mutation fuzzing of extract_symvers.main() over the synthetic kernels: bit flips,
truncations, duplicated, zeroed and random regions, on plain and compressed images.

One case: mutate a seed image, run main() on it in-process, and check what a user relies on:
no exception escapes, it returns in bounded time, and status 0 comes only with well-formed
Module.symvers lines (one per symbol, no duplicates), as status 9 (a dump's loaded modules
incomplete) does with a warning naming what is left out, while any other status comes with
an empty stdout and one `extract_symvers: error:` line."""

import contextlib
import gzip
import io
import lzma
import os
import random
import re
import struct
import tempfile
import time
import zlib

import zstandard

import extract_symvers
from archives import (boot_img, cpio, deb, elf_core, fdt, kdump, lz4_legacy, sparse, tar,
                      vendor_boot_img, zip_of)
from kernelimage import ERAS, build, make_exports, randbytes
from kobuild import build_module
from memdump import (MMUS, PPC64_PAGE_OFFSET, arm64_tables, book3s_memory, kernel_with_modules,
                     module_btf, paged_dump, paged_memory, physical_dump, qemu_cpu_state,
                     segment_dump, x86_64_tables)

LINE = re.compile(r"0x[0-9a-f]{8}\t[A-Za-z_][A-Za-z0-9_.$]*\t[!-~]+(\tEXPORT_[A-Z_]+(\t[!-~]*)?)?")
CASE_SECONDS = 10


def seeds():
    """(image bytes, CLI options) pairs to mutate: several eras, widths and forms."""
    kernels = [build("2.6.12", bits=32), build("2.6.18", bits=64, big=True),
               build("2.6.32", bits=32), build("4.10", bits=64, big=True, rel_crcs=True),
               build("5.10", bits=64, unused=True), build("5.19", bits=32, big=True),
               build("7.2", bits=64)]
    out = [(k.data, k.options) for k in kernels] + [(k.data, []) for k in kernels]
    k = kernels[-2]
    out.append((gzip.compress(k.data), k.options))
    out.append((lzma.compress(k.data), k.options))
    out.append((zstandard.ZstdCompressor().compress(k.data), k.options))
    # module archives, modules only (--modules FILE)
    tree = {"lib/modules/6.14.0/kernel/drivers/m%d.ko" % i:
            build_module("6.14", make_exports(ERAS["6.14"], count=5, seed=40 + i))
            for i in range(3)}
    flat = {"lib/modules/m%d.ko" % i: ko for i, ko in enumerate(tree.values())}
    for archive in (gzip.compress(cpio(tree)), cpio(flat, odc=True), tar(tree, "w:xz"),
                    deb(tar(tree, "w:xz")), zip_of(flat),
                    vendor_boot_img([lz4_legacy(cpio(flat)), gzip.compress(cpio(flat))], 4),
                    boot_img(b"\0" * 3000, gzip.compress(cpio(flat)), 2)):
        out.append((archive, ["--modules"]))
    # kernels in containers and dumps
    small = build("5.19", bits=32, base=0xC0008000)
    fit = fdt({"images": {"kernel-1": {"type": b"kernel\0", "compression": b"gzip\0",
                                        "data": gzip.compress(small.data)}}})
    memory = bytearray(1 << 20) + small.data + bytes(1 << 16)
    with tempfile.TemporaryDirectory() as directory:
        elf_core(os.path.join(directory, "core"), [(0xC0000000, 0, len(memory), bytes(memory))],
                 notes=[(b"VMCOREINFO", 0, b"OSRELEASE=5.19.0\n")], bits=32)
        core = open(os.path.join(directory, "core"), "rb").read()
    for container in (boot_img(gzip.compress(small.data), b"", 2), fit,
                      sparse(bytes(8192) + gzip.compress(small.data) + bytes(-len(
                          gzip.compress(small.data)) % 4096)), core,
                      kdump(bytes(memory), lambda page: (zlib.compress(page), 1)),
                      kdump(bytes(memory), lambda page: (page, 0), flattened=True)):
        out.append((container, []))
    # dumps of physical memory with modules loaded: page tables to walk (x86-64 from QEMU's
    # CPU state, arm64 and riscv64 from VMCOREINFO), struct modules on a ring, their BTF
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "dump")
        physical_dump(path, kernel_with_modules(count=3), x86_64_tables, module_btf("6.1", 8),
                      notes=[(b"QEMU", qemu_cpu_state)])
        out.append((open(path, "rb").read(), []))
        modules = 0xFFFFFFC008000000
        physical_dump(path, kernel_with_modules(count=3, kernel_base=0xFFFFFFC010000000,
                                                module_base=modules, head=0xFFFFFFC011000000),
                      arm64_tables, notes=[(b"VMCOREINFO", lambda root: (
                          "SYMBOL(swapper_pg_dir)=ffffffc020000000\nNUMBER(kimage_voffset)="
                          "%#x\nNUMBER(VA_BITS)=39\n" % (0xFFFFFFC020000000 - root)).encode())],
                      machine=183)
        out.append((open(path, "rb").read(), []))
        # riscv64: Sv39 from VMCOREINFO's satp (MODE 8), the kernel in megapages
        paged_dump(path, kernel_with_modules(count=3, prel32=False,
                                             kernel_base=0xFFFFFFFF80000000,
                                             module_base=0xFFFFFFFF40000000,
                                             head=0xFFFFFFFF81000000),
                   MMUS["riscv sv39"], large=21, machine=243, info=lambda root, offset: (
                       "NUMBER(va_kernel_pa_offset)=%#x\nNUMBER(satp)=%#x\n"
                       % (offset, 8 << 60 | root >> 12)).encode())
        out.append((open(path, "rb").read(), []))
        # s390x: big-endian, a region-third table from CR13 of the CPU note (NT_S390_CTRS),
        # the kernel in 1 MiB segments, modules in 4 KiB pages below it
        memory = kernel_with_modules(era="7.2", layout="7.2", count=3, big=True, prel32=False,
                                     kernel_base=0x3FFFE3A8000, module_base=0x3FFFE200000,
                                     head=0x3FFFF3A8000)
        physical, root, _ = paged_memory(memory, MMUS["s390x region-third"], large=20,
                                         big=True)
        start, image = physical.image()
        elf_core(path, [(start, start, len(image), image)], machine=22, big=True,
                 notes=[(b"LINUX", 0x304, struct.pack(">16Q", *[0] * 13 + [root | 0x7, 0, 0]))])
        out.append((open(path, "rb").read(), []))
        # ppc64le: the hash MMU's Linux tables (64 KiB pages), the kernel in the linear map,
        # from VMCOREINFO's swapper_pg_dir; a big-endian ELF, as QEMU 7.2 writes
        memory = kernel_with_modules(count=3, prel32=False, kernel_base=PPC64_PAGE_OFFSET,
                                     module_base=0xC008000000000000,
                                     head=PPC64_PAGE_OFFSET + 0x20000)
        physical, root = book3s_memory(memory, MMUS["book3s hash 64k"], 0xC008000000000000,
                                       False)
        start, image = physical.image()
        elf_core(path, [(start, start, len(image), image)], machine=21, big=True, notes=[(
            b"VMCOREINFO", 0, b"PAGESIZE=65536\nSYMBOL(swapper_pg_dir)=%x\n"
            % (root + PPC64_PAGE_OFFSET))])
        out.append((open(path, "rb").read(), []))
        # MIPS64 (4 KiB pages) and LoongArch (16 KiB): table pointers in KSEG0, XKPHYS, DMW1
        for mmu, direct, module_base in (("mips64 r2 huge", 0xFFFFFFFF80000000,
                                          0xFFFFFFFFC0000000),
                                         ("loongarch 16k", 0x9000000000000000,
                                          0xFFFF800002010000)):
            segment_dump(path, dict(count=3, prel32=False, kernel_base=direct + 0x100000,
                                    module_base=module_base, head=direct + 0x1100000),
                         mmu, direct, False, machine=8 if mmu.startswith("mips") else 258)
            out.append((open(path, "rb").read(), []))
    return out


def mutate(data, rng):
    data = bytearray(data)
    kind = rng.randrange(6)
    n = len(data)
    if kind == 0:                                   # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(n)
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:                                 # truncation
        del data[rng.randrange(n):]
    elif kind == 2:                                 # a region copied over another
        size = rng.randint(1, max(1, n // 8))
        src, dst = rng.randrange(n - size + 1), rng.randrange(n - size + 1)
        data[dst:dst + size] = data[src:src + size]
    elif kind == 3:                                 # a zeroed region
        size = rng.randint(1, max(1, n // 8))
        at = rng.randrange(n)
        data[at:at + size] = bytes(len(data[at:at + size]))
    elif kind == 4:                                 # a random table
        size = rng.randint(4, 512)
        at = rng.randrange(n)
        data[at:at + size] = randbytes(rng, len(data[at:at + size]))
    else:                                           # words set to small values
        for _ in range(rng.randint(1, 16)):
            at = rng.randrange(n // 4) * 4
            data[at:at + 4] = rng.randrange(-64, 64).to_bytes(4, "little", signed=True)
    return bytes(data)


def run_case(data, options, directory):
    """Run main() on data; return a failure description, or None when all is well."""
    path = os.path.join(directory, "kernel")
    with open(path, "wb") as f:
        f.write(data)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = extract_symvers.main(list(options) + [path])
    except BaseException as e:                      # nothing may escape
        return "escaped: %r" % e
    took = time.perf_counter() - start
    if took > CASE_SECONDS:
        return "took %.1f s" % took
    lines = out.getvalue().splitlines()
    if status in (0, extract_symvers.EXIT_INCOMPLETE):
        bad = [line for line in lines if not LINE.fullmatch(line)]
        names = [tuple(line.split("\t")[1:3]) for line in lines]     # (symbol, module)
        if bad or not lines and "--modules" not in options or len(set(names)) != len(names):
            return "status %d with malformed output: %r" % (status, bad[:2] or lines[:2])
        if status and "warning: " not in err.getvalue():
            return "status %d without a warning" % status
    else:
        errors = [line for line in err.getvalue().splitlines()
                  if line.startswith("extract_symvers: error:")]
        if lines or len(errors) != 1 or "internal error" in errors[0]:
            return "status %d with stdout %r, errors %r" % (status, lines[:2], errors)
    return None


def replay(case, images, directory):
    """Run the case that the seed `case` makes; its failure, or None."""
    case_rng = random.Random(case)
    data, options = images[case_rng.randrange(len(images))]
    return run_case(mutate(data, case_rng), options, directory)


def fuzz(cases=None, seconds=None, seed=0):
    """Run `cases` cases (or as many as fit in `seconds`); (cases run, [(case seed, failure)])."""
    rng = random.Random(seed)
    images = seeds()
    failures, done = [], 0
    deadline = None if seconds is None else time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as directory:
        while (cases is None or done < cases) and (deadline is None or time.monotonic() < deadline):
            case = rng.getrandbits(32)
            failure = replay(case, images, directory)
            if failure:
                failures.append((case, failure))
            done += 1
    return done, failures
