#!/usr/bin/env python3
"""Which one-line mistakes in the rules the fast tests catch: bench/mutants.py [-k WORD] [-j N].

Each mutant is (description, the line as it is, the line mistaken, the test files that
should catch it).  Applied one at a time to a copy of the repository's extract_symvers.py
and tests in a temporary directory, the tests (no corpus, no root needed) are run there
with pytest -x; a mutant whose tests all pass survives.  Prints one line per mutant and
exits 1 if any survives (or a line is no longer found: the list needs updating)."""

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUTS, LOADED, DUMPS = "tests/test_layouts.py", "tests/test_loaded.py", "tests/test_dumps.py"
CHECK, KABI, SAFETY = "tests/test_check.py", "tests/test_kabi.py", "tests/test_safety.py"
TABLES, DAMAGED = "tests/test_page_tables.py", "tests/test_damaged.py"
BUILDS, BTF = "tests/test_builds.py", "tests/test_btf.py"
SIGNATURES = "tests/test_signatures.py"

MUTANTS = (
    # LAYOUTS: each row's change, and the releases it starts at
    ("5.5.0-5.5.12: namespace last", "((5, 5, 0), dict(columns=COLS_NS_MIDDLE)),",
     "((5, 5, 0), dict(columns=COLS_NS_LAST)),", [LAYOUTS]),
    ("5.5.13 namespace last from 5.5.14", "((5, 5, 13), dict(columns=COLS_NS_LAST)),",
     "((5, 5, 14), dict(columns=COLS_NS_LAST)),", [LAYOUTS]),
    ("5.4.28 namespace last from 5.4.29", "((5, 4, 28), dict(columns=COLS_NS_LAST)),",
     "((5, 4, 29), dict(columns=COLS_NS_LAST)),", [LAYOUTS]),
    ("2.6.9 still lists cleanup_module", "((2, 6, 9), dict(modpost_adds=(\"struct_module\",))),",
     "((2, 6, 10), dict(modpost_adds=(\"struct_module\",))),", [LAYOUTS]),
    ("2.6.17's modpost lists struct_module",
     "((2, 6, 17), dict(section_order=(PLAIN, GPL, GPL_FUTURE), modpost_adds=())),",
     "((2, 6, 17), dict(section_order=(PLAIN, GPL, GPL_FUTURE))),", [LAYOUTS]),
    ("2.6.18's export column from 2.6.19", "((2, 6, 18), dict(section_order=(PLAIN, GPL, "
     "UNUSED, UNUSED_GPL, GPL_FUTURE),", "((2, 6, 19), dict(section_order=(PLAIN, GPL, "
     "UNUSED, UNUSED_GPL, GPL_FUTURE),", [LAYOUTS]),
    ("32-bit CRCs from 4.11", "((4, 10, 0), dict(crc_width=4, rel_crcs=True)),",
     "((4, 11, 0), dict(crc_width=4, rel_crcs=True)),", [LAYOUTS]),
    ("namespaces from 5.5", "((5, 4, 0), dict(namespace=True, columns=COLS_NS_MIDDLE)),",
     "((5, 5, 0), dict(namespace=True, columns=COLS_NS_MIDDLE)),", [LAYOUTS]),
    ("5.12 keeps the unused tables",
     "((5, 12, 0), dict(symsearch=(PLAIN, GPL), unused_tables=(), unused_field=False,",
     "((5, 13, 0), dict(symsearch=(PLAIN, GPL), unused_tables=(), unused_field=False,",
     [LAYOUTS]),
    ("kflagstab from 7.2", "((7, 1, 0), dict(symsearch=(), section_order=(PLAIN,), "
     "flagstab=True)),", "((7, 2, 0), dict(symsearch=(), section_order=(PLAIN,), "
     "flagstab=True)),", [LAYOUTS]),
    ("CRCs self-relative after 5.19", "((5, 19, 0), dict(rel_crcs=False)),",
     "((5, 19, 0), dict(rel_crcs=True)),", [LAYOUTS]),
    # MODULE_LAYOUTS: struct module's export tables by release
    ("struct module reordered from 2.6.28", "ModuleLayout((2, 6, 27), {PLAIN: SYMS_CRCS_COUNT, "
     "GPL: COUNT_SYMS_CRCS,", "ModuleLayout((2, 6, 28), {PLAIN: SYMS_CRCS_COUNT, "
     "GPL: COUNT_SYMS_CRCS,", [LOADED]),
    ("2.6.27's unused tables shaped as the gpl one", "UNUSED: SYMS_CRCS_COUNT, "
     "UNUSED_GPL: COUNT_SYMS_CRCS,", "UNUSED: COUNT_SYMS_CRCS, UNUSED_GPL: COUNT_SYMS_CRCS,",
     [LOADED]),
    ("vote: a table where its own votes are most", "key = (total + n, offsets + (-at,))",
     "key = (n, offsets + (-at,))", [LOADED]),
    ("7.1's flag table after the count", "SYMS_CRCS_FLAGS_COUNT = ((1, 0), (3, 0), (2, 0))",
     "SYMS_CRCS_FLAGS_COUNT = ((1, 0), (2, 0), (3, 0))", [LOADED]),
    # SCHEMES: each level's index bits, the decoders' masks and kinds
    ("x86-64 4-level: 8 PMD index bits", "_Scheme(\"x86-64 4-level\", 8, ((39, 9), (30, 9), "
     "(21, 9), (12, 9)),", "_Scheme(\"x86-64 4-level\", 8, ((39, 9), (30, 9), (21, 8), "
     "(12, 9)),", [LOADED, TABLES]),
    ("x86-64 5-level: 8 P4D index bits", "_Scheme(\"x86-64 5-level\", 8, ((48, 9), (39, 9), "
     "(30, 9), (21, 9), (12, 9)),", "_Scheme(\"x86-64 5-level\", 8, ((48, 9), (39, 8), "
     "(30, 9), (21, 9), (12, 9)),", [TABLES]),
    ("x86-64 large pages at no level", "_x86_decode(X86_MASK, (1, 2)), 48, \"sign\"),",
     "_x86_decode(X86_MASK, ()), 48, \"sign\"),", [LOADED, TABLES]),
    ("x86 large page bit 6", "if last or level in large and entry & 0x80:",
     "if last or level in large and entry & 0x40:", [LOADED, TABLES]),
    ("i386 PAE: 1 PDPT bit", "\"i386 pae\": _Scheme(\"i386 PAE\", 8, ((30, 2), (21, 9), (12, 9)),",
     "\"i386 pae\": _Scheme(\"i386 PAE\", 8, ((30, 1), (21, 9), (12, 9)),", [TABLES]),
    ("i386: 9 PTE index bits", "\"i386\": _Scheme(\"i386 2-level\", 4, ((22, 10), (12, 10)),",
     "\"i386\": _Scheme(\"i386 2-level\", 4, ((22, 10), (12, 9)),", [TABLES]),
    ("ARMv7 short: 7 second-level bits", "_Scheme(\"ARMv7 short descriptors\", 4, ((20, 12), "
     "(12, 8)),", "_Scheme(\"ARMv7 short descriptors\", 4, ((20, 12), (12, 7)),", [TABLES]),
    ("ARMv7 short: no first-level sections", "if kind == 2:", "if kind == 3:", [TABLES]),
    ("ARMv7 short: second-level table mask 4 KiB", "return TABLE, entry & 0xFFFFFC00",
     "return TABLE, entry & 0xFFFFF000", [TABLES]),
    ("arm64: top level as wide as the others",
     "levels.insert(0, (shift, min(granule - 3, va_bits - shift)))",
     "levels.insert(0, (shift, granule - 3))", [LOADED, TABLES]),
    ("arm64: PA[51:48] with 16 KiB granules", "if granule == 16:", "if granule == 14:",
     [LOADED, TABLES]),
    ("page-table walk: one bit less at every level",
     "entry = self._entries(table + (address >> shift & (1 << bits) - 1)",
     "entry = self._entries(table + (address >> shift & (1 << bits - 1) - 1)",
     [LOADED, TABLES]),
    ("i386 PAE: CR3 as a page", "cr3 & (0xFFFFFFE0 if pae else 0xFFFFF000)",
     "cr3 & 0xFFFFF000", [TABLES]),
    ("module memory: 4 KiB pages whatever the granule",
     "page = 1 << memory.tables.scheme.levels[-1][0]", "page = 0x1000", [TABLES]),
    ("x86-64: 5 levels by another CR4 bit", "cr4 & 1 << 12 else", "cr4 & 1 << 11 else",
     [TABLES]),
    ("x86-64: the kernel's offset from phys_base", "return X86_64_KERNEL_MAP - found[0]",
     "return X86_64_KERNEL_MAP + found[0]", [TABLES]),
    ("arm64: 16 KiB pages as 4 KiB ones", "{4096: 12, 16384: 14, 65536: 16}",
     "{4096: 12, 16384: 12, 65536: 16}", [TABLES]),
    ("arm64: VA bits from T1SZ", "va_bits = 64 - t1sz[0] if t1sz", "va_bits = 63 - t1sz[0] if t1sz",
     [TABLES]),
    ("RISC-V: the PPN's shift", "address = (entry >> 10 & (1 << 44) - 1) << 12",
     "address = (entry >> 10 & (1 << 44) - 1) << 10", [TABLES]),
    ("RISC-V: no megapages", "    if entry & 0xE:\n        return PAGE_ENTRY",
     "    if last:\n        return PAGE_ENTRY", [TABLES]),
    ("RISC-V: Svnapot's N ignored",
     "return PAGE_ENTRY, address, 16 if last and entry >> 63 else None",
     "return PAGE_ENTRY, address, None", [TABLES]),
    ("RISC-V: Sv48 with Sv39's top", "\"riscv sv48\": _Scheme(\"RISC-V Sv48\", 8, ((39, 9),",
     "\"riscv sv48\": _Scheme(\"RISC-V Sv48\", 8, ((38, 9),", [TABLES]),
    ("RISC-V: satp's modes swapped", "SATP_MODES = {8: 39, 9: 48, 10: 57}",
     "SATP_MODES = {8: 39, 9: 57, 10: 48}", [TABLES]),
    ("RISC-V: satp's PPN as an address", "(satp[0] & (1 << 44) - 1) << 12",
     "(satp[0] & (1 << 44) - 1)", [TABLES]),
    ("RISC-V: modules only above the kernel", "EM_RISCV: [(0xffffffff00000000, 1 << 64)]",
     "EM_RISCV: [(0xffffffff80000000, 1 << 64)]", [TABLES]),
    ("RISC-V: the window's base without va_kernel_pa_offset",
     "_numbers(info, \"NUMBER(va_kernel_pa_offset)\")", "_numbers(info, \"NUMBER(va_pa_offset)\")",
     [TABLES]),
    ("RISC-V: the scan from the smallest mode", "for bits in sorted(RISCV_SCHEMES, reverse=True):",
     "for bits in sorted(RISCV_SCHEMES):", [TABLES]),
    # the module ring
    ("ring: next->prev not checked",
     "return here[way] if there and there[1 - way] == node else None",
     "return here[way] if there else None", [LOADED]),
    ("ring: the first node that is no module the head",
     "others = [n for n in others if kernel_at(n)]", "others = others[:1]", [LOADED]),
    # damaged dumps: never a made-up value, never all for one
    ("a page partly held read whole", "elif not fill and isinstance(page, _Partial):",
     "elif False:", [DAMAGED]),
    ("a CRC table not in the dump read as zeros", "if at and mm.read(at, length) is None:",
     "if False:", [DAMAGED]),
    ("overlapping tables of two modules not said", "if start < end and owner[0] != i:",
     "if False:", [DAMAGED]),
    ("a link broken one way not walked around", "if joined is stretch:", "if False:",
     [DAMAGED]),
    ("a kdump page cut by the file's end decompressed",
     "    if len(data) < size:\n        return None", "    if False:\n        return None",
     [DAMAGED]),
    ("a corrupt kdump page fails the run", "        return _corrupt_page(corrupt, offset, e)",
     "        raise SymversError(str(e), EXIT_FORMAT)", [DAMAGED]),
    # kdump pages by address
    ("kdump: pfn of an address in 4 KiB pages", "for pfn in range(address // self.page, "
     "_round_up(address + size, self.page) // self.page):", "for pfn in range(address // "
     "4096, _round_up(address + size, self.page) // self.page):", [DUMPS, TABLES]),
    ("kdump: a page found at its pfn", "return pfn * self.page + found",
     "return pfn + found", [DUMPS, TABLES, DAMAGED, LOADED]),
    # load checks
    ("same_magic: the release compared with CRCs", "    if has_crcs:\n        module_magic",
     "    if not has_crcs:\n        module_magic", [CHECK]),
    ("same_magic: the release compared even with CRCs", "    if has_crcs:\n        module_magic",
     "    if False:\n        module_magic", [CHECK]),
    ("check: a CRC of 0 compared", "if not self.has_crcs or not crc or symbol not in",
     "if not self.has_crcs or symbol not in", [CHECK]),
    ("vermagic: differences only of the kernel's words",
     "for what in dict.fromkeys(list(module_parts) + list(kernel_parts)):",
     "for what in dict.fromkeys(list(kernel_parts)):", [CHECK]),
    ("namespace module: with - in the module's name", "name = module_name.replace(\"-\", \"_\")",
     "name = module_name", [CHECK]),
    ("namespace module: with - in the pattern",
     "for pattern in namespace[len(\"module:\"):].replace(\"-\", \"_\").split(\",\"):",
     "for pattern in namespace[len(\"module:\"):].split(\",\"):", [CHECK]),
    ("namespace module: a prefix without *",
     "if name == pattern or pattern.endswith(\"*\") and name.startswith(pattern[:-1]):",
     "if name == pattern or name.startswith(pattern.rstrip(\"*\")):", [CHECK]),
    # builds as the loader judges them
    ("build: vermagic not compared", "        loader.check_vermagic()\n        loader."
     "check_modstruct_version()\n        loader.check_crcs()", "        loader.check_"
     "modstruct_version()\n        loader.check_crcs()", [BUILDS]),
    ("build: CRCs not compared", "        loader.check_modstruct_version()\n        loader."
     "check_crcs()", "        loader.check_modstruct_version()", [BUILDS]),
    ("build: exports of the modules not resolved",
     "exports.setdefault(symbol.name, symbol._replace(module=name))", "pass", [BUILDS]),
    ("build: other releases not said", "            if magic and release and release != "
     "build.release:", "            if False:", [BUILDS]),
    ("build: modules alone compared with no vermagic", "            magic = next(iter(",
     "            magic = None and next(iter(", [BUILDS]),
    ("elf: header read in the module's byte order", "ehdr = ELF_RECORDS[(build.bits, \">\" if "
     "build.big_endian else \"<\")][0]", "ehdr = ELF_RECORDS[(build.bits, \">\" if "
     "module.build.big_endian else \"<\")][0]", [BUILDS]),
    ("elf: class not checked where the arch does", "arch.checks_class\n", "False\n",
     [BUILDS]),
    ("elf: EM_486 refused on i386", "ArchCheck(EM_386, (EM_386, 6), False)",
     "ArchCheck(EM_386, (EM_386,), False)", [BUILDS]),
    ("elf: ET_REL not checked", "(\"type\", fields.type != ET_REL, fields.type)",
     "(\"type\", False, fields.type)", [BUILDS]),
    ("elf: reasons logged from 5.15", "ELF_REASONS_LOGGED = (5, 16)",
     "ELF_REASONS_LOGGED = (5, 10)", [BUILDS]),
    ("elf: more judged after the header", "    if loader.module_sig_check() and "
     "loader.elf_header():\n        loader.elf_validity_check()", "    if loader.module_sig_"
     "check() and (loader.elf_header() or True):\n        loader.elf_validity_check()",
     [BUILDS]),
    ("stand-in: loaded namesake kept", "if symbol.module == \"vmlinux\" or _module_key("
     "symbol.module) not in names}", "if True}", [BUILDS]),
    ("stand-in: namesake kept", "given = [m for m in side.modules if _loaded_name(m) not in "
     "names]", "given = side.modules", [BUILDS]),
    ("stand-in: by the file's name", "return _module_key(module_file.module.modinfo.get("
     "\"name\", [module_file.name])[0])", "return _module_key(module_file.name)", [BUILDS]),
    ("gki: sublevel not compared", "    if mine.sublevel != theirs.sublevel:",
     "    if False:", [BUILDS]),
    ("gki: generation not compared", "    if mine.generation != theirs.generation:",
     "    if False:", [BUILDS]),
    ("duplicate export: CRCs not compared", "            if crc == symbol.crc:",
     "            if True:", [BUILDS]),
    # --diff
    ("kabi: module names with -", "return column.rsplit(\"/\", 1)[-1].replace(\"-\", \"_\")",
     "return column.rsplit(\"/\", 1)[-1]", [KABI]),
    ("kabi: a path is another module", "return column.rsplit(\"/\", 1)[-1].replace(\"-\", \"_\")",
     "return column.replace(\"-\", \"_\")", [KABI]),
    ("kabi: one change a symbol", "                changes.append(Change(kind, name, was, "
     "now))\n", "                changes.append(Change(kind, name, was, now))\n"
     "                break\n", [KABI]),
    ("why: offsets that follow from embedded types compared",
     "return tuple(member[:2] + member[3:] for member in body)", "return tuple(body)", [KABI]),
    ("why: every type on the way a step", "step = named[child]", "step = 1", [KABI]),
    ("why: types reached only one way", "bits |= reached[child]", "pass", [KABI]),
    ("btf: the blob without its strings", "return e, header, header.hdr_len + max(header.type_off "
     "+ header.type_len,", "return e, header, header.hdr_len + max(header.type_off + "
     "header.type_len, 0) or (", [BTF]),
    ("kabi: GPL-only to GPL-only became GPL-only", "(\"became GPL-only\", gpl == (False, True)),",
     "(\"became GPL-only\", gpl[1]),", [KABI]),
    ("kabi: GPL-only by the first type alone", "gpl = (was.export_type in GPL_ONLY, "
     "now.export_type in GPL_ONLY)", "gpl = (was.export_type == GPL.name, now.export_type == "
     "GPL.name)", [KABI]),
    # module signatures: mod_verify_sig(), module_sig_check(), the kernel's keys
    ("signatures: the signer by issuer alone", "else (c.issuer, c.serial) ==\n"
     "                                                 (self.issuer, self.serial))), None)",
     "else c.issuer ==\n                                                 self.issuer)), None)",
     [SIGNATURES]),
    ("signatures: the PKCS#1 padding not checked", "return pow(s, e, n).to_bytes(size, \"big\") "
     "== \\\n        b\"\\0\\1\" + b\"\\xff\" * (size - 3 - len(digest_info)) + b\"\\0\" + digest_info",
     "return pow(s, e, n).to_bytes(size, \"big\").endswith(digest_info)", [SIGNATURES]),
    ("signatures: the attributes' digest not compared", "if signer.attested_digest is not "
     "None and signer.attested_digest != \\", "if False and signer.attested_digest != \\",
     [SIGNATURES]),
    ("signatures: the list's length word not needed", "if not _length_follows(image, start, "
     "end):", "if False:", [SIGNATURES]),
    ("signatures: a bad signature refused only when enforced", "if error in (\"EBADMSG\", "
     "\"EKEYREJECTED\") or error == \"ENOPKG\" and not words:", "if error == \"EBADMSG\" or "
     "error == \"ENOPKG\" and not words:", [SIGNATURES]),
    ("signatures: module.sig_enforce's first value wins", "found = value.strip('\"') if equal "
     "else True", "found = found or (value.strip('\"') if equal else True)", [SIGNATURES]),
    ("signatures: ECDSA's digest not truncated to the order", "e = int.from_bytes("
     "signer.digest, \"big\") >> max(0, 8 * len(signer.digest) -", "e = int.from_bytes("
     "signer.digest, \"big\") >> 0 * max(0, 8 * len(signer.digest) -", [SIGNATURES]),
    ("signatures: the words from 5.5", "SIGNATURE_WORDS = (5, 4)", "SIGNATURE_WORDS = (5, 5)",
     [SIGNATURES]),
    ("signatures: lockdown from the command line ignored", "if level in (\"integrity\", "
     "\"confidentiality\") and \\", "if False and \\", [SIGNATURES]),
    # -o: replaced whole, keeping the mode
    ("write_file: written in place", "os.replace(tmp, target)",
     "os.replace(tmp, target) if False else (open(target, 'wb').write(data), os.unlink(tmp))",
     [SAFETY]),
    ("write_file: the symlink replaced", "os.replace(tmp, target)", "os.replace(tmp, path)",
     [SAFETY]),
    ("write_file: the temporary file left on failure", "        os.unlink(tmp)\n",
     "        pass\n", [SAFETY]),
    ("write_file: a new file 0644 whatever the umask", "if st else 0o666 & ~_umask())",
     "if st else 0o644)", [SAFETY]),
    ("write_file: mode not kept",
     "os.fchmod(fd, stat.S_IMODE(st.st_mode) if st else 0o666 & ~_umask())",
     "os.fchmod(fd, 0o666 & ~_umask())", [SAFETY]),
)


def copy_tree(to):
    for name in ("extract_symvers.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), to)
    shutil.copytree(os.path.join(ROOT, "tests"), os.path.join(to, "tests"),
                    ignore=shutil.ignore_patterns("__pycache__"))


def run(mutant):
    """(description, 'killed' / 'SURVIVED' / 'line not found', the test that failed)."""
    description, original, mutated, tests = mutant
    with tempfile.TemporaryDirectory(prefix="mutant.") as tmp:
        copy_tree(tmp)
        path = os.path.join(tmp, "extract_symvers.py")
        with open(path) as f:
            source = f.read()
        if source.count(original) != 1:
            return description, "line not found", ""
        with open(path, "w") as f:
            f.write(source.replace(original, mutated))
        tests = [t for t in tests if os.path.exists(os.path.join(tmp, t))]
        if not tests:
            return description, "SURVIVED", "(no test file)"
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                 "no:cacheprovider", "-k", "not test_kcore", *tests],
                                cwd=tmp, capture_output=True, text=True,
                                env=dict(os.environ, EXTRACT_SYMVERS_CORPUS="",
                                         EXTRACT_SYMVERS_SHARED=""))
        failed = [line.split(" ")[1] for line in result.stdout.splitlines()
                  if line.startswith("FAILED ")]
        return description, "killed" if result.returncode else "SURVIVED", \
            failed[0] if failed else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only the mutants whose description has this")
    parser.add_argument("-j", type=int, default=1, help="mutants run at once")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k in m[0]]
    survivors = 0
    with concurrent.futures.ThreadPoolExecutor(args.j) as pool:
        for description, outcome, test in pool.map(run, chosen):
            survivors += outcome != "killed"
            print("%-16s %-55s %s" % (outcome, description, test), flush=True)
    print("%d mutants, %d not killed" % (len(chosen), survivors))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
