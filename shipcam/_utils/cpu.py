"""What the OS reports about this CPU's int8 instructions: whether int8 inference can beat float here."""

from __future__ import annotations

__all__ = ["INT8_FLAGS", "cpu_name", "int8_features"]

# CPU flags (as /proc/cpuinfo names them) that decide whether int8 inference beats float: a dot-product
# instruction multiplies four int8 pairs and adds them into int32 in one step. Without one, an x86 CPU
# emulates it with VPMADDUBSW (pairs into int16), and int8 is the smallest file, not the fastest.
INT8_FLAGS = {
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX int8",
    "avx512f": "AVX-512",
    "asimddp": "ARM dot product",
    "i8mm": "ARM int8 matrix multiply",
}


def int8_features(cpuinfo: str | None = None) -> list[str]:
    """The int8 features the OS reports for this CPU (``INT8_FLAGS``), by name; [] where it reports none."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    flags = set()
    for line in cpuinfo.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags |= set(line.split(":", 1)[1].split())
    return [name for flag, name in INT8_FLAGS.items() if flag in flags]


def cpu_name() -> str:
    """The CPU's model name as the OS reports it ('' where it does not)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""
