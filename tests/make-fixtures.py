#!/usr/bin/env python3
"""Build kaifuku's test disk images from nothing, with independent real tools.

Usage: make-fixtures.py [--force] [--keep-temp] [--jobs N] OUTDIR

Images are formatted by mkntfs / mkfs.vfat, partitioned by sfdisk, populated through
ntfs-3g (FUSE) and mtools, converted by qemu-img.  Clocks are frozen with libfaketime so
that every run produces byte-identical images.  The expected answers
(OUTDIR/<image>.expected.json) are then read back from the finished images with other
independent tools (qemu-img info, sfdisk -J, blkid, ntfsinfo, ntfslabel, sleuthkit
fsstat/fls/istat, a read-only ntfs-3g mount) -- never copied from the recipe below.

Nothing here uses kaifuku's own code.  Needs root (FUSE mounts, loop device for the
4096-byte-sector image).  Debian packages: ntfs-3g sleuthkit fdisk gdisk dosfstools
mtools qemu-utils faketime (and util-linux, mount: blkid, losetup).

If OUTDIR/stamp holds the sha256 of this script, nothing is done.
"""

import argparse
import concurrent.futures
import datetime
import errno
import fnmatch
import glob
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid

KiB = 1024
MiB = 1024 * 1024

SCRIPT_PATH = os.path.abspath(__file__)
HELPER_FILES = []  # other files whose content feeds the stamp (none so far)

# ---------------------------------------------------------------------------
# The recipe: times, headers, names
# ---------------------------------------------------------------------------

T_MKFS = "2024-01-15 09:00:00"        # mkntfs / mkfs.vfat / partitioning clock
T_INSTALL = "2024-01-15 09:30:00"     # base Windows tree
T_AGENT = "2024-03-04 11:20:00"       # CrowdStrike agent install
T_UNKNOWN = "2024-07-18 21:30:00"     # an older channel-291 version
T_FAULTY = "2024-07-19 04:09:13"      # the faulty update
T_FIXED = "2024-07-19 05:27:41"       # the fixed update
T_POST = "2024-07-19 05:48:02"        # minidump etc. written after the crash
CS_HEADER = bytes.fromhex("aaaaaaaa01002301")

CS_DIR = "Windows/System32/drivers/CrowdStrike"
INTERESTING_DIRS = ["", "Windows", "Windows/System32", "Windows/System32/drivers", "Windows/System32/drivers/etc",
                    CS_DIR, "Windows/WinSxS/Manifests"]
MATCH_GLOB = "c-00000291*.sys"          # matched against the lower-cased name

GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_MSR = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
GPT_BASIC = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
GPT_WINRE = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC"

UUID_NS = uuid.UUID("6b616966-756b-4500-8000-000000000000")


def det_uuid(*parts):
    return str(uuid.uuid5(UUID_NS, "/".join(parts))).upper()


def det_hex(nbytes, *parts):
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[: 2 * nbytes]


def rng_for(*parts):
    return random.Random(int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:8], "little"))


def blob(n, *parts):
    """n deterministic pseudo-random bytes (stable across Python versions)."""
    return hashlib.shake_256("/".join(parts).encode()).digest(n) if n else b""


# Channel-291 files, per fixture.  kind: header = starts with CS_HEADER, zeros = all zero.
def cs291(name, when, kind="header", dos=None, fragmented=False, index="leaf"):
    # index: where the long name's $I30 entry must end up -- "leaf", "internal-separator"
    # (an entry with a child in an index block), "root-separator" (same, in $INDEX_ROOT),
    # "root-only" (directory without $INDEX_ALLOCATION).  Checked after the build.
    return dict(name=name, time=when, kind=kind, dos=dos, fragmented=fragmented, index=index)


N030 = "C-00000291-00000000-00000030.sys"
N032 = "C-00000291-00000000-00000032.sys"
N033 = "C-00000291-00000000-00000033.sys"
N034 = "c-00000291-00000000-00000034.SYS"

WIN = "windows"

# Partition/volume recipe.  Offsets and sizes in sectors of the image's sector size.
FIXTURES = [
    dict(name="gpt-win.raw", scheme="gpt", sector=512, disk=400 * MiB,
         note="GPT, ESP + MSR + Windows + WinRE; 291 files 030 (unknown), 032 (faulty, index entry is a separator in an internal index block), 033 (fixed, fragmented)",
         parts=[
             dict(n=1, start=2048, size=204800, type=GPT_ESP, name="EFI system partition",
                  fs="vfat", label="SYSTEM", content="esp"),
             dict(n=2, start=206848, size=32768, type=GPT_MSR, name="Microsoft reserved partition",
                  fs=None),
             dict(n=3, start=239616, size=491520, type=GPT_BASIC, name="Basic data partition",
                  fs="ntfs", label="Windows", cluster=4096, content=WIN,
                  cs=[cs291(N030, T_UNKNOWN), cs291(N032, T_FAULTY, index="internal-separator"),
                      cs291(N033, T_FIXED, fragmented=True)],
                  post_fix_updates=16),
             dict(n=4, start=731136, size=81920, type=GPT_WINRE, name="",
                  attrs="RequiredPartition GUID:63", fs="ntfs", label="Recovery", cluster=4096,
                  content="recovery"),
         ]),
    dict(name="mbr-win.raw", scheme="dos", sector=512, disk=260 * MiB,
         note="MBR, System Reserved + Windows with 512-byte clusters; the 04:09 file is all zeros",
         parts=[
             dict(n=1, start=2048, size=102400, type="7", bootable=True, fs="ntfs",
                  label="System Reserved", cluster=4096, content="sysres"),
             dict(n=2, start=104448, size=425984, type="7", fs="ntfs", label="Windows",
                  cluster=512, content=WIN,
                  cs=[cs291(N032, T_FAULTY, kind="zeros"), cs291(N033, T_FIXED)]),
         ]),
    dict(name="mbr-logical.raw", scheme="dos", sector=512, disk=300 * MiB,
         note="MBR with extended partition; Windows on logical p6; 032 faulty + mixed-case 034 fixed, with DOS names",
         parts=[
             dict(n=1, start=2048, size=102400, type="7", bootable=True, fs="ntfs",
                  label="System Reserved", cluster=4096, content="sysres"),
             dict(n=2, start=104448, size=507904, type="5", fs=None, extended=True),
             dict(n=5, start=106496, size=61440, type="7", fs="ntfs", label="Data",
                  cluster=4096, content="data"),
             dict(n=6, start=169984, size=440320, type="7", fs="ntfs", label="Windows",
                  cluster=4096, content=WIN,
                  cs=[cs291(N032, T_FAULTY, dos="C-0000~1.SYS"),
                      cs291(N034, T_FIXED, dos="C-0000~2.SYS")]),
         ]),
    dict(name="bare-64k.raw", scheme="none", sector=512, disk=256 * MiB,
         note="no partition table; NTFS with 64 KiB clusters; 291 files have DOS names",
         parts=[
             dict(n=None, start=0, size=256 * MiB // 512, fs="ntfs", label="Windows",
                  cluster=65536, content=WIN,
                  cs=[cs291(N032, T_FAULTY, dos="C-0000~1.SYS"),
                      cs291(N033, T_FIXED, dos="C-0000~2.SYS")]),
         ]),
    dict(name="gpt-4kn.raw", scheme="gpt", sector=4096, disk=240 * MiB,
         note="GPT on 4096-byte logical sectors; NTFS with 4096-byte sectors (4 KiB MFT records); 033 index entry is a separator in $INDEX_ROOT",
         parts=[
             dict(n=1, start=256, size=4096, type=GPT_MSR, name="Microsoft reserved partition",
                  fs=None),
             dict(n=2, start=4352, size=56064, type=GPT_BASIC, name="Basic data partition",
                  fs="ntfs", label="Windows", cluster=4096, content=WIN,
                  cs=[cs291(N032, T_FAULTY), cs291(N033, T_FIXED, index="root-separator")],
                  post_fix_updates=16),
         ]),
    dict(name="cs-rootonly.raw", scheme="none", sector=512, disk=64 * MiB,
         note="bare NTFS, small Windows tree; CrowdStrike holds only csagent.sys, 032 and 033, so its index is root-only",
         parts=[dict(n=None, start=0, size=64 * MiB // 512, fs="ntfs", label="Windows",
                     cluster=4096, content=WIN, minimal=True, cs_only_291=True,
                     cs=[cs291(N032, T_FAULTY, index="root-only"), cs291(N033, T_FIXED, index="root-only")])]),
    dict(name="no-crowdstrike.raw", scheme="none", sector=512, disk=160 * MiB,
         note="bare NTFS, Windows tree without a CrowdStrike directory",
         parts=[dict(n=None, start=0, size=160 * MiB // 512, fs="ntfs", label="Windows",
                     cluster=4096, content=WIN, cs=None)]),
    dict(name="cs-empty.raw", scheme="none", sector=512, disk=160 * MiB,
         note="bare NTFS, CrowdStrike directory with channel files but no C-00000291 file",
         parts=[dict(n=None, start=0, size=160 * MiB // 512, fs="ntfs", label="Windows",
                     cluster=4096, content=WIN, cs=[], no291=True)]),
]

VHDS = [  # (output, source raw, qemu subformat)
    ("gpt-win-fixed.vhd", "gpt-win.raw", "fixed"),
    ("gpt-win-dynamic.vhd", "gpt-win.raw", "dynamic"),
    ("bare-64k-dynamic.vhd", "bare-64k.raw", "dynamic"),
]

# (output, source raw, qemu-img convert options, variant). Variants: "plain" (fixed in place),
# "compressed" (`-c`: the clusters a fix touches are compressed, so the fix stores them anew at the
# end of the file), "snapshot" (an internal snapshot taken after the conversion shares every L2
# table, so the fix is refused).
QCOW2S = [
    ("gpt-win-v2.qcow2", "gpt-win.raw", ["-o", "compat=0.10"], "plain"),
    ("gpt-win-v3.qcow2", "gpt-win.raw", ["-o", "compat=1.1"], "plain"),
    ("bare-64k-compressed.qcow2", "bare-64k.raw", ["-o", "compat=1.1", "-c"], "compressed"),
    ("bare-64k-snapshot.qcow2", "bare-64k.raw", ["-o", "compat=1.1"], "snapshot"),
]

VHDXS = [  # (output, source raw, qemu subformat)
    ("gpt-win-fixed.vhdx", "gpt-win.raw", "fixed"),
    ("gpt-win-dynamic.vhdx", "gpt-win.raw", "dynamic"),
    ("bare-64k-dynamic.vhdx", "bare-64k.raw", "dynamic"),
]

REAL_DRIVERS = """
1394ohci.sys 3ware.sys ACPI.sys acpidev.sys acpiex.sys acpipagr.sys AcpiPmi.sys acpitime.sys
ADP80XX.SYS afd.sys afunix.sys ahcache.sys amdgpio2.sys amdi2c.sys amdppm.sys amdsata.sys
amdsbs.sys amdxata.sys appid.sys applockerfltr.sys AppvStrm.sys AppVVemgr.sys AppvVfs.sys
arcsas.sys asyncmac.sys atapi.sys b06bdrv.sys bam.sys BasicDisplay.sys BasicRender.sys beep.sys
bindflt.sys bowser.sys BthA2dp.sys BthEnum.sys BthHFEnum.sys bthleenum.sys BTHMINI.sys
bthmodem.sys bthpan.sys BTHport.sys BTHUSB.sys bttflt.sys buttonconverter.sys bxvbda.sys
CAD.sys cdfs.sys cdrom.sys cht4sx64.sys cht4vx64.sys cimfs.sys CLFS.SYS clipsp.sys CmBatt.sys
cmimcext.sys cng.sys CompositeBus.sys condrv.sys csc.sys dam.sys Dumpata.sys dumpfve.sys
dxgkrnl.sys dxgmms1.sys dxgmms2.sys EhStorClass.sys EhStorTcgDrv.sys ErrDev.sys exfat.sys
fastfat.sys fdc.sys filecrypt.sys fileinfo.sys filetrace.sys flpydisk.sys fltMgr.sys fvevol.sys
FWPKCLNT.SYS gagp30kx.sys gencounter.sys genericusbfn.sys GPIOClx0101.sys HdAudio.sys
HDAudBus.sys HidBatt.sys hidbth.sys hidclass.sys hidi2c.sys hidinterrupt.sys hidir.sys
hidparse.sys hidspi.sys hidusb.sys HpSAMD.sys HTTP.sys hvservice.sys hvsocket.sys hwpolicy.sys
hyperkbd.sys HyperVideo.sys i8042prt.sys iaLPSS2i_GPIO2.sys iaLPSS2i_I2C.sys iaStorAVC.sys
iaStorV.sys ibbus.sys IndirectKmd.sys intelide.sys intelpep.sys intelppm.sys iorate.sys
IPMIDrv.sys IPNAT.sys IPT.sys isapnp.sys iScsiPrt.sys ItSas35i.sys kbdclass.sys kbdhid.sys
kdnic.sys KNetPwrDepBroker.sys ks.sys ksecdd.sys ksecpkg.sys ksthunk.sys lltdio.sys
luafv.sys mausbhost.sys mausbip.sys megasas.sys megasas2i.sys megasas35i.sys megasr.sys
Microsoft.Bluetooth.AvrcpTransport.sys mlx4_bus.sys mmcss.sys modem.sys monitor.sys
mouclass.sys mouhid.sys mountmgr.sys mpsdrv.sys MRxDAV.sys mrxsmb.sys mrxsmb20.sys msfs.sys
msgpioclx.sys mshidkmdf.sys mshidumdf.sys msisadrv.sys MSKSSRV.sys mslldp.sys MSPCLOCK.sys
MSPQM.sys msquic.sys mssmbios.sys MSTEE.sys MTConfig.sys mup.sys mvumis.sys ndis.sys
ndiscap.sys NdisImPlatform.sys ndistapi.sys ndisuio.sys NdisVirtualBus.sys ndiswan.sys
ndproxy.sys Ndu.sys NetAdapterCx.sys netbios.sys netbt.sys netio.sys netvsc.sys npfs.sys
npsvctrig.sys nsiproxy.sys ntfs.sys null.sys nvdimm.sys nvraid.sys nvstor.sys pacer.sys
parport.sys partmgr.sys pci.sys pciide.sys pciidex.sys pcmcia.sys pcw.sys pdc.sys peauth.sys
percsas2i.sys percsas3i.sys PktMon.sys pmem.sys PNPMEM.sys portcls.sys processr.sys
qwavedrv.sys ramdisk.sys rasacd.sys RasAgileVpn.sys rasl2tp.sys raspppoe.sys rassstp.sys
rdbss.sys rdpbus.sys RDPDR.sys rdpvideominiport.sys rdyboost.sys ReFS.SYS ReFSv1.sys
rfcomm.sys rhproxy.sys rspndr.sys s3cap.sys sacdrv.sys sbp2port.sys scfilter.sys scmbus.sys
sdbus.sys SDFRd.sys sdport.sys sdstor.sys serenum.sys serial.sys sermouse.sys sfloppy.sys
SiSRaid2.sys SiSRaid4.sys SmartSAMD.sys smbdirect.sys spaceport.sys SpatialGraphFilter.sys
SpbCx.sys srv2.sys srvnet.sys stexstor.sys storahci.sys storflt.sys stornvme.sys storport.sys
storqosflt.sys storufs.sys storvsc.sys swenum.sys tap0901.sys tcpip.sys tcpipreg.sys
tdx.sys Teefer.sys terminpt.sys tm.sys TPM.sys tsusbflt.sys tsusbhub.sys tunnel.sys
UcmCx.sys UcmTcpciCx.sys UcmUcsiAcpiClient.sys UcmUcsiCx.sys ucx01000.sys udecx.sys udfs.sys
UEFI.sys Ufx01000.sys UfxChipidea.sys ufxsynopsys.sys umbus.sys umpass.sys UrsChipidea.sys
UrsCx01000.sys UrsSynopsys.sys usbaudio.sys usbaudio2.sys usbccgp.sys usbcir.sys usbehci.sys
usbhub.sys USBHUB3.SYS usbohci.sys usbprint.sys usbser.sys USBSTOR.SYS usbuhci.sys
USBXHCI.SYS vdrvroot.sys VerifierExt.sys vhdmp.sys vhf.sys Vid.sys VirtualRender.sys
vmbkmcl.sys vmbkmclr.sys vmbus.sys vmbusr.sys vmgencounter.sys vmgid.sys vmstorfl.sys
volmgr.sys volmgrx.sys volsnap.sys volume.sys vpci.sys vsmraid.sys VSTXRAID.SYS vwifibus.sys
vwififlt.sys WacomPen.sys wanarp.sys watchdog.sys wcifs.sys wcnfs.sys WdBoot.sys Wdf01000.sys
WdFilter.sys wdiwifi.sys WdmCompanionFilter.sys WdNisDrv.sys WFPLWFS.SYS wimmount.sys
WindowsTrustedRT.sys WindowsTrustedRTProxy.sys WinMad.sys WinNat.sys WINUSB.SYS WinVerbs.sys
wmiacpi.sys WmiLib.sys wof.sys WpdUpFltr.sys ws2ifsl.sys wtd.sys WUDFPf.sys WUDFRd.sys
xboxgip.sys xinputhid.sys
""".split()

GEN_PREFIX = ["Net", "Usb", "Stor", "Hid", "Vid", "Aud", "Pci", "Acpi", "Bth", "Wlan", "Sata",
              "Nvme", "Kbd", "Mou", "Gpio", "Spb", "Sd", "Tpm", "Sensor", "Cam"]
GEN_MIDDLE = ["Adapter", "Filter", "Bus", "Port", "Class", "Mini", "Enum", "Ctrl", "Ext",
              "Platform", "Service", "Virtual", "Legacy", "Compat", "Power"]
GEN_VENDOR = ["rt", "iw", "e1", "qc", "bcm", "mrvl", "amd", "nv", "ati", "igfx", "hp", "dell",
              "lnv", "vmx", "xen"]

SXS_COMPONENTS = ["microsoft-windows-kernel-pnp", "microsoft-windows-ntfs",
                  "microsoft-windows-tcpip-binaries", "microsoft-windows-storport",
                  "microsoft-windows-usb-hub", "microsoft-windows-audio-audiocore",
                  "microsoft-windows-directx-graphics", "microsoft-windows-bluetooth-stack",
                  "microsoft-windows-font-truetype-arial", "microsoft-windows-shell32",
                  "microsoft-windows-servicingstack", "microsoft-windows-winlogon",
                  "microsoft-windows-security-spp", "microsoft-windows-defender-core",
                  "microsoft-windows-hyper-v-vmbus", "microsoft-windows-netio-infrastructure",
                  "microsoft-windows-i18n-ja-jp", "microsoft-windows-wer-core",
                  "microsoft-windows-d3d12", "microsoft-windows-msxml60"]

HOSTS = (b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n"
         b"# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.\r\n#\r\n"
         b"# localhost name resolution is handled within DNS itself.\r\n"
         b"#\t127.0.0.1       localhost\r\n#\t::1             localhost\r\n")
NETWORKS = (b"# Copyright (c) 1993-1999 Microsoft Corp.\r\n#\r\n"
            b"# This file contains network name/network number mappings for\r\n"
            b"# local networks.\r\n\r\nloopback                 127\r\ncampus                   284.122.107\r\n")
PROTOCOL = (b"# Copyright (c) 1993-2006 Microsoft Corp.\r\n#\r\n"
            b"# This file contains the Internet protocols as defined by RFC 1700\r\n\r\n"
            b"ip       0     IP             # Internet protocol\r\n"
            b"icmp     1     ICMP           # Internet control message protocol\r\n"
            b"tcp      6     TCP            # Transmission control protocol\r\n"
            b"udp      17    UDP            # User datagram protocol\r\n")


# ---------------------------------------------------------------------------
# Process helpers
# ---------------------------------------------------------------------------

class FixtureError(Exception):
    pass


_print_lock = threading.Lock()


def log(msg):
    with _print_lock:
        print(msg, flush=True)


def run(cmd, check=True, env=None, input=None, ok=(0,), cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, input=input, cwd=cwd)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if check and p.returncode not in ok:
        raise FixtureError("command failed (exit %d): %s\n--- stdout:\n%s\n--- stderr:\n%s"
                           % (p.returncode, " ".join(cmd), out[-3000:], err[-3000:]))
    return out if check else (p.returncode, out, err)


def need(cond, msg):
    if not cond:
        raise FixtureError(msg)


def find_libfaketime():
    for pat in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                "/usr/lib64/faketime/libfaketime.so.1"):
        hits = sorted(glob.glob(pat))
        if hits:
            return hits[0]
    raise FixtureError("libfaketime not found: apt-get install -y faketime")


LIBFAKETIME = None


def frozen_env(when):
    env = dict(os.environ)
    env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=when, TZ="UTC", FAKETIME_DONT_FAKE_MONOTONIC="1")
    return env


class Clock:
    """A libfaketime timestamp file: the ntfs-3g daemon reads it on every clock call."""

    def __init__(self, path, when):
        self.path = path
        self.set(when)

    def set(self, when):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(when + "\n")
        os.replace(tmp, self.path)

    def env(self):
        env = dict(os.environ)
        env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME_TIMESTAMP_FILE=self.path, FAKETIME_NO_CACHE="1",
                   FAKETIME_DONT_FAKE_MONOTONIC="1", TZ="UTC")
        return env


_active_mounts = set()
_active_loops = set()
_state_lock = threading.Lock()


class NtfsMount:
    """ntfs-3g in the foreground (no_detach), so that we can wait until it has really exited."""

    def __init__(self, volume, mountpoint, ro, clock=None, logfile=None):
        self.volume, self.mnt, self.ro, self.clock, self.logfile = volume, mountpoint, ro, clock, logfile

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        opts = ("ro,noatime" if self.ro else "rw,noatime,big_writes") + ",no_detach"
        env = self.clock.env() if self.clock else dict(os.environ, TZ="UTC")
        self.logf = open(self.logfile or os.devnull, "ab")
        self.proc = subprocess.Popen(["ntfs-3g", "-o", opts, self.volume, self.mnt],
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 30
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                raise FixtureError("ntfs-3g failed to mount %s (exit %s), see %s"
                                   % (self.volume, self.proc.returncode, self.logfile))
            if time.time() > deadline:
                self.proc.kill()
                raise FixtureError("ntfs-3g mount of %s timed out" % self.volume)
            time.sleep(0.02)
        with _state_lock:
            _active_mounts.add(self.mnt)
        return self.mnt

    def __exit__(self, *exc):
        self.unmount()

    def unmount(self):
        if self.proc is None:
            return
        for attempt in range(50):
            rc, out, err = run(["umount", self.mnt], check=False)
            if rc == 0:
                break
            time.sleep(0.1)
        else:
            raise FixtureError("umount %s failed: %s" % (self.mnt, err))
        try:
            rc = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise FixtureError("ntfs-3g for %s did not exit after umount" % self.volume)
        self.proc = None
        self.logf.close()
        with _state_lock:
            _active_mounts.discard(self.mnt)
        need(rc == 0, "ntfs-3g for %s exited with %d" % (self.volume, rc))


class Loop:
    def __init__(self, path, sector_size, ro):
        self.args = ["losetup", "--show", "-f", "--sector-size", str(sector_size)]
        if ro:
            self.args.append("-r")
        self.args.append(path)

    def __enter__(self):
        self.dev = run(self.args).strip()
        with _state_lock:
            _active_loops.add(self.dev)
        return self.dev

    def __exit__(self, *exc):
        run(["losetup", "-d", self.dev])
        with _state_lock:
            _active_loops.discard(self.dev)


def cleanup_leftovers():
    for m in list(_active_mounts):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    for d in list(_active_loops):
        subprocess.run(["losetup", "-d", d], stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------
# File helpers
# ---------------------------------------------------------------------------

ZERO_4K = bytes(4096)


def sparse_copy(src, dst, src_off=0, length=None, dst_off=0):
    """Copy [src_off, src_off+length) of src into dst at dst_off, writing only non-zero data."""
    with open(src, "rb") as f, open(dst, "r+b") as g:
        fd, gd = f.fileno(), g.fileno()
        end = os.fstat(fd).st_size if length is None else src_off + length
        pos = src_off
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            p = data
            while p < hole:
                n = min(4 * MiB, hole - p)
                buf = os.pread(fd, n, p)
                need(len(buf) == n, "short read from %s" % src)
                # write only the non-zero 4 KiB blocks, so that the destination stays sparse
                i = 0
                while i < n:
                    while i < n and buf[i:i + 4096] == ZERO_4K[:min(4096, n - i)]:
                        i += 4096
                    j = i
                    while j < n and buf[j:j + 4096] != ZERO_4K[:min(4096, n - j)]:
                        j += 4096
                    if j > i:
                        os.pwrite(gd, buf[i:min(j, n)], dst_off + p + i - src_off)
                    i = j
                p += n
            pos = hole


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def disk_usage(path):
    return os.stat(path).st_blocks * 512


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


# ---------------------------------------------------------------------------
# Tree population (through an ntfs-3g mount)
# ---------------------------------------------------------------------------

def ticks(when):
    dt = datetime.datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int((dt - datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()) * 10 ** 7


class Populator:
    def __init__(self, root, clock):
        self.root, self.clock = root, clock

    def p(self, rel):
        return os.path.join(self.root, rel)

    def mkdir(self, rel):
        os.makedirs(self.p(rel), exist_ok=True)

    def file(self, rel, data, dos=None):
        with open(self.p(rel), "wb") as f:
            f.write(data)
        if dos:
            self.dos(rel, dos)

    def dos(self, rel, dos):
        os.setxattr(self.p(rel), "system.ntfs_dos_name", dos.encode())

    def times(self, rel, when):
        t = ticks(when)
        # (creation, data modified, accessed, mft changed) -- ntfs-3g ignores the 4th on set,
        # it takes "now" from the (faked) clock.
        os.setxattr(self.p(rel), "system.ntfs_times", struct.pack("<4Q", t, t, t, t))

    def fsync(self, rel):
        fd = os.open(self.p(rel), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sparse(self, rel, hole, tail):
        with open(self.p(rel), "wb") as f:
            f.seek(hole)
            f.write(tail)


def dos_for(name, used):
    stem, _, ext = name.rpartition(".")
    base = re.sub(r"[^A-Z0-9_\-]", "", stem.upper())[:6] or "FILE"
    for i in range(1, 10):
        cand = "%s~%d.%s" % (base, i, ext.upper()[:3])
        if cand not in used:
            used.add(cand)
            return cand
    raise FixtureError("no DOS name for " + name)


def is_83(name):
    stem, dot, ext = name.rpartition(".")
    return bool(dot) and 1 <= len(stem) <= 8 and 1 <= len(ext) <= 3 and \
        re.fullmatch(r"[A-Za-z0-9_\-]+", stem) is not None and re.fullmatch(r"[A-Za-z0-9]+", ext) is not None


def driver_list():
    """~400 (name, size, dos-name-or-None), same for every Windows volume."""
    rng = rng_for("drivers")
    names = list(REAL_DRIVERS)
    seen = {n.lower() for n in names}
    while len(names) < 396:
        kind = rng.random()
        if kind < 0.5:
            n = "%s%s%s.sys" % (rng.choice(GEN_VENDOR), rng.choice(GEN_PREFIX).lower(),
                                 rng.choice(["", "64", "x64", "2", "3", "ndis", "w10"]))
        else:
            n = "%s%s%s_%s.sys" % (rng.choice(GEN_VENDOR), rng.choice(GEN_PREFIX),
                                    rng.choice(GEN_MIDDLE), rng.choice(["x64", "amd64", "win10", "v2", "kmdf"]))
        if n.lower() not in seen:
            seen.add(n.lower())
            names.append(n)
    names += ["ドライバ.sys", "Überwachung.sys", "pilote-réseau.sys", "Microsoft.Windows.Storage.Core.Filter.Extended.sys"]
    out, used = [], set()
    for n in names:
        size = int(2 * KiB * (100 ** rng.random()))
        dos = None
        if is_83(n):
            if rng.random() < 0.5:
                dos = n.upper()            # ntfs-3g turns the long name into Win32&DOS
        elif all(ord(c) < 128 for c in n) and rng.random() < 0.3:
            dos = dos_for(n, used)
        out.append((n, size, dos))
    return out


def channel_list():
    """~150 other channel files (name, size, time), sorted by time."""
    rng = rng_for("channels")
    chans = [0, 1, 2, 3, 4, 10, 11, 12, 19, 23, 24, 26, 40, 41, 50, 51, 54, 58, 61, 64, 70, 79, 82,
             90, 100, 102, 109, 121, 131, 133, 151, 164, 176, 186, 199, 201, 212, 226, 249, 256,
             261, 268, 281, 285, 289, 303, 330, 340, 354, 372]
    out, seen = [], set()
    t0 = datetime.datetime(2024, 7, 1, 0, 0, 0)
    while len(out) < 148:
        ch = rng.choice(chans)
        name = "C-%08d-%08d-%08d.sys" % (ch, rng.choice([0, 0, 0, 1, 2]), rng.randrange(1, 9000))
        if name in seen:
            continue
        seen.add(name)
        size = int(KiB * (300 ** (rng.random() ** 2)))
        when = t0 + datetime.timedelta(seconds=rng.randrange(0, 17 * 86400))
        out.append((when.strftime("%Y-%m-%d %H:%M:%S"), name, size))
    out.sort()
    return out


def channel_data(name, size):
    ch = int(name[2:10])
    return (CS_HEADER[:6] + struct.pack("<H", ch) + blob(size, "chan", name))[:size]


def manifest_names():
    rng = rng_for("manifests")
    out, seen = [], set()
    while len(out) < 1500:
        comp = rng.choice(SXS_COMPONENTS)
        if rng.random() < 0.5:
            comp += "-" + rng.choice(["deployment", "onecore", "events", "adm", "admin", "mof", "registry"])
        n = "%s_%s_31bf3856ad364e35_10.0.%d.%d_%s_%016x.manifest" % (
            rng.choice(["amd64", "wow64", "x86", "msil"]), comp, rng.choice([19041, 20348, 22621]),
            rng.randrange(1, 4000), rng.choice(["none", "en-us", "ja-jp"]), rng.getrandbits(64))
        if 60 <= len(n) <= 90 and n.lower() not in seen:
            seen.add(n.lower())
            out.append((n, rng.choice([0, 0, 120, 300, 450, 600, 700])))
    return out


def populate_windows(pop, part, fixture):
    c = pop.clock
    c.set(T_INSTALL)
    for d in ["Windows/System32/drivers/etc", "Windows/System32/config", "Windows/Fonts",
              "Windows/WinSxS/Manifests", "Windows/Temp", "Windows/Minidump", "Users/Default",
              "Program Files/Common Files"]:
        pop.mkdir(d)
    pop.file("Windows/System32/ntoskrnl.exe", b"MZ" + blob(600 * KiB - 2, "ntoskrnl"))
    pop.file("Windows/System32/hal.dll", b"MZ" + blob(90 * KiB - 2, "hal"))
    pop.file("Windows/System32/config/SYSTEM", b"regf" + blob(MiB - 4, "SYSTEM"))
    pop.sparse("Windows/System32/config/SYSTEM.LOG1", 768 * KiB, b"DIRT" + blob(8 * KiB - 4, "LOG1"))
    pop.file("Users/Default/NTUSER.DAT", b"regf" + blob(256 * KiB - 4, "NTUSER"))
    for n, size in [("arial.ttf", 180 * KiB), ("Ärger.ttf", 9 * KiB), ("segoeui.ttf", 120 * KiB),
                    ("メイリオ.ttc", 20 * KiB)]:
        pop.file("Windows/Fonts/" + n, blob(size, "font", n))
    for n, data in [("hosts", HOSTS), ("networks", NETWORKS), ("protocol", PROTOCOL)]:
        pop.file("Windows/System32/drivers/etc/" + n, data)
    minimal = part.get("minimal", False)
    drivers = driver_list()
    if minimal:
        drivers = drivers[:12]
    for n, size, dos in drivers:
        pop.file("Windows/System32/drivers/" + n, (b"MZ\x90\x00" + blob(size, "drv", n))[:size], dos=dos)
    sxs = "Windows/WinSxS/amd64_example_31bf3856ad364e35_10.0.19041.1_none_0123456789abcdef"
    pop.mkdir(sxs)
    if minimal:
        linked = []
    else:
        linked = [d for d in drivers if d[0] in ("ACPI.sys", "ntfs.sys", "tcpip.sys")]
        linked += [d for d in drivers if d[2] and "~" in d[2]][:2]
        for n, size in manifest_names():
            pop.file("Windows/WinSxS/Manifests/" + n, blob(size, "manifest", n))
    for n, _, _ in linked:
        os.link(pop.p("Windows/System32/drivers/" + n), pop.p(sxs + "/" + n))

    cs = part.get("cs")
    if cs is not None:
        c.set(T_AGENT)
        pop.mkdir(CS_DIR)
        pop.file(CS_DIR + "/csagent.sys", b"MZ\x90\x00" + blob(150 * KiB - 4, "csagent"))
        pop.mkdir("Program Files/CrowdStrike")
        pop.file("Program Files/CrowdStrike/CSFalconService.exe", b"MZ" + blob(64 * KiB, "svc"))
        for when, name, size in ([] if part.get("cs_only_291") else channel_list()):
            c.set(when)
            pop.file(CS_DIR + "/" + name, channel_data(name, size))
        c.set("2024-07-18 23:10:00")
        if not part.get("cs_only_291"):
            pop.file(CS_DIR + "/C-00000292-00000000-00000001.sys",
                     CS_HEADER + blob(12 * KiB, "decoy292"))
        if not part.get("no291") and not part.get("cs_only_291"):
            c.set("2024-07-18 23:12:00")
            pop.file(CS_DIR + "/C-00000291-00000000-00000035.dat", CS_HEADER + blob(3 * KiB, "decoydat"))
        for spec in cs:
            c.set(spec["time"])
            rel = CS_DIR + "/" + spec["name"]
            size = rng_for(fixture["name"], spec["name"]).randrange(39 * KiB, 42 * KiB)
            if spec["kind"] == "zeros":
                data = bytes(size)
            else:
                data = CS_HEADER + blob(size - 8, "c291", spec["name"])
            if spec["fragmented"]:
                # Writing the chunks back to front makes ntfs-3g fill holes one by one, each in a
                # new place: several runs, in descending LCN order (the sparse flag is cleared
                # again once no hole is left).
                fd = os.open(pop.p(rel), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                try:
                    for off in reversed(range(0, size, 8 * KiB)):
                        os.pwrite(fd, data[off:off + 8 * KiB], off)
                finally:
                    os.close(fd)
            else:
                pop.file(rel, data)
            if spec["dos"]:
                pop.dos(rel, spec["dos"])
            pop.times(rel, spec["time"])
            pop.fsync(rel)  # write the record while the clock still shows this file's time
        # later updates of another channel; their insertion splits index blocks so that some
        # 291 entry becomes a separator (counts found by trial, asserted by recipe_check)
        c.set(T_FIXED)
        for i in range(part.get("post_fix_updates", 0)):
            n = "C-00000292-00000001-%08d.sys" % (i + 1)
            pop.file(CS_DIR + "/" + n, channel_data(n, rng_for(fixture["name"], n).randrange(KiB, 9 * KiB)))
    c.set(T_POST)
    # same name as the faulty file, but outside drivers\CrowdStrike: must never match
    pop.file("Windows/Temp/C-00000291-00000000-00000032.sys", CS_HEADER + blob(40 * KiB, "tempdecoy"))
    pop.file("Windows/Minidump/071924-10218-01.dmp", b"PAGEDU64" + blob(300 * KiB, "dump"))


def populate_other(pop, kind):
    pop.clock.set(T_INSTALL)
    if kind == "sysres":
        pop.mkdir("Boot/en-US")
        pop.mkdir("Boot/Fonts")
        pop.file("bootmgr", blob(400 * KiB, "bootmgr"))
        pop.file("BOOTNXT", b"")
        pop.file("Boot/BCD", b"regf" + blob(28 * KiB, "BCD"))
        pop.file("Boot/BCD.LOG", b"")
        pop.file("Boot/en-US/bootmgr.exe.mui", b"MZ" + blob(80 * KiB, "mui"))
        pop.file("Boot/Fonts/segmono_boot.ttf", blob(40 * KiB, "segmono"))
    elif kind == "recovery":
        pop.mkdir("Recovery/WindowsRE")
        pop.file("Recovery/WindowsRE/Winre.wim", b"MSWIM\0\0\0" + blob(2 * MiB, "winre"))
        pop.file("Recovery/WindowsRE/ReAgent.xml", b"<?xml version='1.0' encoding='utf-8'?>\r\n<WindowsRE/>\r\n")
    elif kind == "data":
        pop.mkdir("Projects/2024")
        for i in range(12):
            pop.file("Projects/2024/report-%02d.docx" % i, blob(rng_for("data", str(i)).randrange(1, 200) * KiB, "doc", str(i)))
        pop.file("readme.txt", b"data volume\r\n")
    else:
        raise FixtureError("unknown content " + kind)


# ---------------------------------------------------------------------------
# Building images
# ---------------------------------------------------------------------------

def build_ntfs(fx, part, work):
    ss = fx["sector"]
    vol = os.path.join(work, "%s.p%s.ntfs" % (fx["name"], part["n"] or 0))
    size = part["size"] * ss
    if os.path.exists(vol):
        os.unlink(vol)
    with open(vol, "wb") as f:
        f.truncate(size)
    cmd = ["mkntfs", "-F", "-Q", "-q", "-s", str(ss), "-c", str(part["cluster"]), "-p", str(part["start"]),
           "-H", "255", "-S", "63", "-L", part["label"], vol]
    run(cmd, env=frozen_env(T_MKFS))
    serial = det_hex(8, fx["name"], str(part["n"]), "serial")
    run(["ntfslabel", "--new-serial=" + serial, vol])
    mnt = os.path.join(work, "mnt-%s-%s" % (fx["name"], part["n"] or 0))
    clock = Clock(os.path.join(work, "clock-%s-%s" % (fx["name"], part["n"] or 0)), T_INSTALL)
    with NtfsMount(vol, mnt, ro=False, clock=clock, logfile=vol + ".ntfs-3g.log"):
        pop = Populator(mnt, clock)
        if part["content"] == WIN:
            populate_windows(pop, part, fx)
        else:
            populate_other(pop, part["content"])
    os.rmdir(mnt)
    return vol


def build_vfat(fx, part, work):
    ss = fx["sector"]
    vol = os.path.join(work, "%s.p%s.vfat" % (fx["name"], part["n"]))
    with open(vol, "wb") as f:
        f.truncate(part["size"] * ss)
    env = frozen_env(T_MKFS)
    run(["mkfs.vfat", "-F", "32", "-S", str(ss), "-s", "1", "-h", str(part["start"]), "-n", part["label"],
         "-i", det_hex(4, fx["name"], str(part["n"]), "volid"), vol], env=env)
    env = frozen_env(T_INSTALL)
    env["MTOOLS_SKIP_CHECK"] = "1"
    for d in ["::/EFI", "::/EFI/Microsoft", "::/EFI/Microsoft/Boot", "::/EFI/Microsoft/Boot/en-US",
              "::/EFI/Microsoft/Recovery", "::/EFI/Boot"]:
        run(["mmd", "-i", vol, d], env=env)
    src = os.path.join(work, "esp-src")
    os.makedirs(src, exist_ok=True)
    files = [("EFI/Microsoft/Boot/bootmgfw.efi", b"MZ" + blob(500 * KiB, "bootmgfw")),
             ("EFI/Microsoft/Boot/bootmgr.efi", b"MZ" + blob(480 * KiB, "bootmgr.efi")),
             ("EFI/Microsoft/Boot/BCD", b"regf" + blob(28 * KiB, "espbcd")),
             ("EFI/Microsoft/Boot/en-US/bootmgfw.efi.mui", b"MZ" + blob(70 * KiB, "mui2")),
             ("EFI/Microsoft/Recovery/BCD", b"regf" + blob(16 * KiB, "recbcd")),
             ("EFI/Boot/bootx64.efi", b"MZ" + blob(500 * KiB, "bootmgfw"))]
    for i, (rel, data) in enumerate(files):
        p = os.path.join(src, "f%d" % i)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (1705311000, 1705311000))
        run(["mcopy", "-m", "-i", vol, p, "::/" + rel], env=env)
    shutil.rmtree(src)
    return vol


def sfdisk_script(fx):
    lines = []
    if fx["scheme"] == "gpt":
        lines += ["label: gpt", "label-id: " + det_uuid(fx["name"], "disk"), "unit: sectors",
                  "sector-size: %d" % fx["sector"]]
        if fx["sector"] == 4096:
            lines.append("first-lba: 6")
    else:
        lines += ["label: dos", "label-id: 0x" + det_hex(4, fx["name"], "disk"), "unit: sectors"]
    lines.append("")
    for p in fx["parts"]:
        f = ["start=%d" % p["start"], "size=%d" % p["size"], "type=%s" % p["type"]]
        if fx["scheme"] == "gpt":
            f.append("uuid=" + det_uuid(fx["name"], str(p["n"])))
            f.append('name="%s"' % p.get("name", ""))
            if p.get("attrs"):
                f.append('attrs="%s"' % p["attrs"])
        elif p.get("bootable"):
            f.append("bootable")
        lines.append(", ".join(f))
    return "\n".join(lines) + "\n"


def build_fixture(fx, outdir, work):
    t0 = time.time()
    img = os.path.join(outdir, fx["name"])
    vols = {}
    for part in fx["parts"]:
        if part.get("fs") == "ntfs":
            vols[part["n"]] = build_ntfs(fx, part, work)
        elif part.get("fs") == "vfat":
            vols[part["n"]] = build_vfat(fx, part, work)
    with open(img, "wb") as f:
        f.truncate(fx["disk"])
    if fx["scheme"] != "none":
        script = sfdisk_script(fx)
        with open(os.path.join(work, fx["name"] + ".sfdisk"), "w") as f:
            f.write(script)
        if fx["sector"] == 512:
            run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", img], input=script.encode())
        else:
            with Loop(img, fx["sector"], ro=False) as dev:
                run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", dev], input=script.encode())
    for part in fx["parts"]:
        if part["n"] in vols:
            sparse_copy(vols[part["n"]], img, dst_off=part["start"] * fx["sector"])
            os.unlink(vols[part["n"]])
    log("  built %-22s %5.1fs" % (fx["name"], time.time() - t0))


def fix_vhd_uuid(path, name):
    """qemu-img puts a random UUID in the VHD footer; replace it by a fixed one (and the checksum)."""
    def patch(off):
        with open(path, "r+b") as f:
            f.seek(off)
            foot = bytearray(f.read(512))
            need(foot[:8] == b"conectix", "%s: no VHD footer at %d" % (path, off))
            foot[68:84] = uuid.UUID(det_uuid(name, "vhd")).bytes
            foot[64:68] = b"\0\0\0\0"
            foot[64:68] = struct.pack(">I", (~sum(foot)) & 0xFFFFFFFF)
            f.seek(off)
            f.write(foot)
    size = os.path.getsize(path)
    patch(size - 512)
    with open(path, "rb") as f:
        if f.read(8) == b"conectix":
            patch(0)


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C_TABLE = _crc32c_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = CRC32C_TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32c_seal(buf):
    """Sets the CRC-32C field at offset 4 of a VHDX structure (computed with the field zeroed)."""
    buf[4:8] = b"\0\0\0\0"
    buf[4:8] = struct.pack("<I", crc32c(bytes(buf)))


def fix_vhdx_ids(path, name):
    """qemu-img gives a VHDX random identifiers: FileWriteGuid, DataWriteGuid and the sequence
    number in both headers, and the VirtualDiskId metadata item; replace them by fixed values,
    keeping which header is current, and reseal the checksums. The log entries it wrote while
    creating the file are stale (the headers' LogGuid is zero: the log is empty) and vary between
    runs: clear them."""
    guid = lambda *p: uuid.UUID(det_uuid(name, *p)).bytes_le
    with open(path, "r+b") as f:
        def rd(off, n):
            f.seek(off)
            return bytearray(f.read(n))

        def wr(off, b):
            f.seek(off)
            f.write(bytes(b))

        heads = [rd(off, 4096) for off in (64 << 10, 128 << 10)]
        for h in heads:
            need(h[:4] == b"head" and struct.unpack("<I", h[4:8])[0] == crc32c(bytes(h[:4]) + b"\0" * 4 + bytes(h[8:])),
                 "%s: qemu-img wrote a bad VHDX header" % path)
            need(h[48:64] == bytes(16), "%s: qemu-img left a non-empty VHDX log" % path)
        seqs = [struct.unpack("<Q", h[8:16])[0] for h in heads]
        low = min(seqs)
        log_off, log_len = struct.unpack("<Q", heads[0][72:80])[0], struct.unpack("<I", heads[0][68:72])[0]
        for i, h in enumerate(heads):
            h[8:16] = struct.pack("<Q", 1000 + seqs[i] - low)
            h[16:32] = guid("vhdx-file-write", str(i))
            h[32:48] = guid("vhdx-data-write", str(i))
            crc32c_seal(h)
            wr((64 << 10) * (i + 1), h)
        # The stale log entries qemu-img wrote while allocating blocks differ from run to run (their
        # order and content, not only their LogGuid). The headers' LogGuid is zero, so no reader
        # looks at them: the log region is cleared, which is what an empty log looks like.
        wr(log_off, bytes(log_len))
        # VirtualDiskId: through the region table and the metadata table
        rt = rd(192 << 10, 64 << 10)
        regions = {bytes(rt[16 + i * 32:32 + i * 32]): struct.unpack("<Q", rt[32 + i * 32:40 + i * 32])[0]
                   for i in range(struct.unpack("<I", rt[8:12])[0])}
        meta = regions[uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le]
        mt = rd(meta, 64 << 10)
        need(mt[:8] == b"metadata", "%s: no VHDX metadata table" % path)
        disk_id = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
        for i in range(struct.unpack("<H", mt[10:12])[0]):
            e = mt[32 + i * 32:64 + i * 32]
            if bytes(e[:16]) == disk_id:
                wr(meta + struct.unpack("<I", e[16:20])[0], guid("vhdx-disk"))
                break
        else:
            need(False, "%s: no VirtualDiskId" % path)


def build_vhdx(out, src, sub, outdir):
    dst = os.path.join(outdir, out)
    run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=%s" % sub,
         os.path.join(outdir, src), dst], env=frozen_env(T_POST))
    fix_vhdx_ids(dst, out)
    log("  built %-22s" % out)


def build_vhd(out, src, sub, outdir):
    dst = os.path.join(outdir, out)
    run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=%s,force_size=on" % sub,
         os.path.join(outdir, src), dst], env=frozen_env(T_POST))
    fix_vhd_uuid(dst, out)
    log("  built %-22s" % out)


def build_qcow2(out, src, options, variant, outdir):
    """qcow2 holds no identifiers; the snapshot's date comes from the frozen clock."""
    dst = os.path.join(outdir, out)
    run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2"] + options + [os.path.join(outdir, src), dst],
        env=frozen_env(T_POST))
    if variant == "snapshot":
        run(["qemu-img", "snapshot", "-c", "before-fix", dst], env=frozen_env(T_POST))
    log("  built %-22s" % out)


# ---------------------------------------------------------------------------
# Reading the answers back with independent tools
# ---------------------------------------------------------------------------

def parse_kv(text):
    d = {}
    for line in text.splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            k = k.strip()
            if k and k not in d:
                d[k] = v.strip()
    return d


def blkid_probe(img, off):
    """blkid low-level probe at a byte offset; {} when nothing is found (exit 2)."""
    rc, out, err = run(["blkid", "-p", "-O", str(off), "-o", "export", img], check=False)
    need(rc in (0, 2), "blkid -p failed on %s@%d: %s" % (img, off, err))
    return {k: re.sub(r"\\(.)", r"\1", v) for k, _, v in (l.partition("=") for l in out.splitlines()) if v}


def read_table(img):
    """(scheme, sector_size, partitions) from sfdisk -J (via a 4096-byte loop device when the
    512-byte view only shows a protective MBR) and blkid -p."""
    probe = blkid_probe(img, 0)
    pttype = probe.get("PTTYPE")
    if not pttype:
        need(probe.get("TYPE"), "%s: blkid finds neither a partition table nor a filesystem" % img)
        return "none", 512, [], None
    js = json.loads(run(["sfdisk", "-J", img]))["partitiontable"]
    loop_ss = None
    parts = js.get("partitions", [])
    if js["label"] == "dos" and len(parts) == 1 and parts[0]["type"] == "ee":
        with Loop(img, 4096, ro=True) as dev:
            js = json.loads(run(["sfdisk", "-J", dev]))["partitiontable"]
        need(js["label"] == "gpt", "%s: protective MBR but no GPT at 512 or 4096" % img)
        loop_ss = 4096
    ss = js["sectorsize"]
    scheme = {"gpt": "gpt", "dos": "mbr"}[js["label"]]
    out = []
    for p in js.get("partitions", []):
        num = int(re.search(r"(\d+)$", p["node"][len(js["device"]):]).group(1))
        e = dict(number=num, start=p["start"] * ss, size=p["size"] * ss, type=p["type"],
                 start_sector=p["start"], size_sectors=p["size"])
        for k in ("name", "uuid", "attrs"):
            if k in p:
                e[k] = p[k]
        if scheme == "mbr":
            e["bootable"] = bool(p.get("bootable", False))
        out.append(e)
    table = dict(label_id=js.get("id"), first_lba=js.get("firstlba"), last_lba=js.get("lastlba"))
    return scheme, ss, out, table


def mmls_check(img, ss, parts, imgtype=None):
    cmd = ["mmls", "-b", str(ss)] + (["-i", imgtype] if imgtype else []) + [img]
    out = run(cmd)
    got = set()
    for line in out.splitlines():
        m = re.match(r"^\d+:\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$", line)
        if m and m.group(1) not in ("Meta", "-------"):
            got.add((int(m.group(2)) * ss, int(m.group(4)) * ss))
    want = {(p["start"], p["size"]) for p in parts if p["type"] not in ("5", "f", "85")}
    need(got == want, "%s: mmls partitions %s != sfdisk %s" % (img, sorted(got), sorted(want)))


def tsk_args(ss, off, imgtype):
    a = ["-b", str(ss), "-o", str(off // ss)]
    if imgtype:
        a += ["-i", imgtype]
    return a


def parse_istat(text):
    r = dict(si={}, fn=[], data=None)
    m = re.search(r"Entry:\s+(\d+)\s+Sequence:\s+(\d+)", text)
    r["entry"], r["sequence"] = int(m.group(1)), int(m.group(2))
    r["allocated"] = "Not Allocated" not in text.split("$STANDARD_INFORMATION")[0]
    m = re.search(r"^Links:\s+(\d+)", text, re.M)
    r["links"] = int(m.group(1)) if m else None
    for sec in re.split(r"\n(?=\$\w+ Attribute Values:)", text):
        times = dict(re.findall(r"^(Created|File Modified|MFT Modified|Accessed):\s+(.+?) \(UTC\)", sec, re.M))
        if sec.startswith("$STANDARD_INFORMATION"):
            r["si"] = times
        elif sec.startswith("$FILE_NAME"):
            m = re.search(r"^Name: (.*)$", sec, re.M)
            r["fn"].append(dict(name=m.group(1), times=times))
    m = re.search(r"^Type: \$DATA \(128-\d+\)\s+Name: N/A\s+(.*?)\s+size: (\d+)(?:\s+init_size: (\d+))?\n((?:[\d ]+\n)*)",
                  text, re.M)
    if m:
        clusters = [int(x) for x in m.group(4).split()]
        runs = 0
        prev = None
        for c in clusters:
            if prev is None or not ((c == 0 and prev == 0) or (c != 0 and prev != 0 and c == prev + 1)):
                runs += 1
            prev = c
        r["data"] = dict(flags=m.group(1), size=int(m.group(2)), clusters=clusters, runs=runs,
                         resident=m.group(1).startswith("Resident"))
    return r


def parse_index_dump(text):
    """The $I30 B+ tree of a directory as dumped by `ntfsinfo -v -i N`: nodes reachable from the root."""
    nodes, cur, root_flags, entry = {}, None, None, None
    for line in text.splitlines():
        k, _, v = line.strip().partition(":")
        v = v.strip()
        if k.startswith("Dumping attribute"):
            cur = None
        elif k == "Dumping index root":
            cur = "root"
            nodes[cur] = dict(flags=root_flags, entries=[])
        elif k == "Dumping index block":
            cur = "block?"
        elif k == "Node VCN" and cur == "block?":
            cur = int(v.split()[0])
            nodes[cur] = dict(flags=None, entries=[])
        elif k == "Index header flags":
            if cur is None:
                root_flags = int(v, 16)
            elif cur in nodes:
                nodes[cur]["flags"] = int(v, 16)
        elif k == "Entry length" and cur in nodes:
            entry = {}
            nodes[cur]["entries"].append(entry)
        elif entry is not None and cur in nodes:
            if k == "Index entry flags":
                entry["flags"] = int(v, 16)
            elif k == "Subnode VCN":
                entry["subnode"] = int(v.split()[0])
            elif k == "FILE record number":
                entry["mft"] = int(v.split()[0])
            elif k == "Namespace":
                entry["namespace"] = v
            elif k == "Filename":
                entry["name"] = v[1:-1] if v.startswith("'") else v
    need("root" in nodes, "ntfsinfo -v: no index root")
    reach, depth = {}, {}

    def walk(n, d):
        need(n in nodes and n not in reach, "ntfsinfo -v: index node %s missing or seen twice" % n)
        reach[n] = d
        for e in nodes[n]["entries"]:
            if "subnode" in e:
                walk(e["subnode"], d + 1)
    walk("root", 1)
    return {n: nodes[n] for n in reach}, max(reach.values())


def index_facts(tree, mft):
    """Where the index entries (long and DOS names) of record mft live."""
    out = []
    for n, node in tree.items():
        real = [e for e in node["entries"] if "name" in e]
        for i, e in enumerate(real):
            if e.get("mft") == mft:
                out.append(dict(name=e["name"], namespace=e.get("namespace"),
                                node="root" if n == "root" else n,
                                node_is_leaf=not (node["flags"] or 0) & 1,
                                has_subnode="subnode" in e, position=i, entries_in_node=len(real)))
    return out


def iso(t):
    m = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{9})$", t)
    need(m, "unexpected istat time " + t)
    frac = m.group(3)[:7].rstrip("0")
    return "%sT%s%sZ" % (m.group(1), m.group(2), "." + frac if frac else "")


def iso_ticks(t):
    secs, rem = divmod(t, 10 ** 7)
    dt = datetime.datetime(1601, 1, 1) + datetime.timedelta(seconds=secs)
    frac = ("%07d" % rem).rstrip("0") if rem else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


def walk_files(root, ntfs):
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = dict(size=st.st_size, sha256=sha256_file(p))
            if ntfs:
                e["mft_record"] = st.st_ino
                e["links"] = st.st_nlink
                try:
                    e["dos_name"] = os.getxattr(p, "system.ntfs_dos_name").decode()
                except OSError:
                    pass
            files[rel] = e
    return files


def read_ntfs_volume(img, ss, part_no, off, size, imgtype, work, files_json_name, outdir):
    """Everything about one NTFS volume, read back from the image."""
    tag = "%s@%d" % (img, off)
    vol = os.path.join(work, "rb-%s-%d.ntfs" % (os.path.basename(img), off))
    with open(vol, "wb") as f:
        f.truncate(size)
    sparse_copy(img, vol, src_off=off, length=size)

    info = parse_kv(run(["ntfsinfo", "-m", vol]))
    lab = parse_kv(run(["ntfslabel", "-n", "-v", vol]))
    fs = parse_kv(run(["fsstat"] + tsk_args(ss, off, imgtype) + [img]))
    rc, fix_out, fix_err = run(["ntfsfix", "-n", vol], check=False)
    need(rc == 0, "%s: ntfsfix -n failed (%d): %s %s" % (tag, rc, fix_out, fix_err))
    serial = lab["Serial number"].lower()
    need(re.fullmatch(r"[0-9a-f]{16}", serial), "%s: odd serial %r" % (tag, serial))
    need(fs["Volume Serial Number"].lower() == serial, "%s: fsstat serial %s != ntfslabel %s"
         % (tag, fs["Volume Serial Number"], serial))
    cluster = int(info["Cluster Size"])
    need(int(fs["Cluster Size"]) == cluster, "%s: cluster size mismatch fsstat/ntfsinfo" % tag)
    need(int(fs["Sector Size"]) == int(info["Sector Size"]), "%s: sector size mismatch" % tag)
    tsr = re.match(r"0 - (\d+)", fs["Total Sector Range"])
    flags = int(info["Volume Flags"], 16)
    v = dict(partition=part_no, offset=off, fs="ntfs", label=info["Volume Name"], serial=serial,
             cluster_size=cluster, sector_size=int(info["Sector Size"]),
             mft_record_size=int(info["MFT Record Size"]), index_record_size=int(info["Index Block Size"]),
             volume_size=int(info["Volume Size in Clusters"]) * cluster,
             total_sectors=int(tsr.group(1)) + 1,
             ntfs_version=info["Volume Version"], volume_flags=flags, dirty=bool(flags & 1),
             mft_lcn=int(info["LCN of Data Attribute for FILE_MFT"]),
             mftmirr_lcn=int(info["LCN of Data Attribute for File_MFTMirr"]))

    # fls: every allocated path, for cross-checks
    fls = {}
    for line in run(["fls", "-r", "-p"] + tsk_args(ss, off, imgtype) + [img]).splitlines():
        m = re.match(r"^(\S)/(\S)\s+(\*\s+)?(\d+)-(\d+)-(\d+):\t(.*)$", line)
        if m and not m.group(3):
            fls.setdefault(m.group(7), int(m.group(4)))

    mnt = os.path.join(work, "rbmnt-%s-%d" % (os.path.basename(img), off))
    with NtfsMount(vol, mnt, ro=True):
        v["windows"] = os.path.isdir(os.path.join(mnt, "Windows/System32"))
        v["crowdstrike_dir"] = os.path.isdir(os.path.join(mnt, CS_DIR))
        matches = []
        if v["crowdstrike_dir"]:
            for n in sorted(os.listdir(os.path.join(mnt, CS_DIR))):
                p = os.path.join(mnt, CS_DIR, n)
                if not (fnmatch.fnmatchcase(n.lower(), MATCH_GLOB) and os.path.isfile(p)):
                    continue
                st = os.stat(p)
                with open(p, "rb") as f:
                    data = f.read()
                try:
                    dos = os.getxattr(p, "system.ntfs_dos_name").decode()
                except OSError:
                    dos = None
                xt = struct.unpack("<4Q", os.getxattr(p, "system.ntfs_times"))
                ist = parse_istat(run(["istat", "-z", "UTC"] + tsk_args(ss, off, imgtype) + [img, str(st.st_ino)]))
                need(ist["entry"] == st.st_ino and ist["allocated"], "%s: istat %d mismatch" % (tag, st.st_ino))
                need(fls.get(CS_DIR + "/" + n) == st.st_ino,
                     "%s: fls inode for %s is %s, stat says %d" % (tag, n, fls.get(CS_DIR + "/" + n), st.st_ino))
                fn_names = [x["name"] for x in ist["fn"]]
                need(n in fn_names and (dos is None or dos in fn_names),
                     "%s: istat names %s vs %s/%s" % (tag, fn_names, n, dos))
                si = ist["si"]
                e = dict(name=n, path=CS_DIR + "/" + n, mft_record=st.st_ino, sequence=ist["sequence"],
                         size=st.st_size, allocated_size=st.st_blocks * 512,
                         created=iso(si["Created"]), modified=iso(si["File Modified"]),
                         mft_modified=iso(si["MFT Modified"]), accessed=iso(si["Accessed"]),
                         header_hex=data[:8].hex(), all_zero=data.count(0) == len(data),
                         sha256=hashlib.sha256(data).hexdigest(), dos_name=dos,
                         links=st.st_nlink, data_runs=ist["data"]["runs"] if ist["data"] else None,
                         resident=ist["data"]["resident"] if ist["data"] else None)
                need(e["created"] == iso_ticks(xt[0]) and e["modified"] == iso_ticks(xt[1])
                     and e["accessed"] == iso_ticks(xt[2]) and e["mft_modified"] == iso_ticks(xt[3]),
                     "%s: istat times %s disagree with ntfs_times xattr %s" % (tag, e, xt))
                matches.append(e)
            # every fls path below the directory that matches must be in the list, and vice versa
            fl = sorted(p.split("/")[-1] for p in fls if p.startswith(CS_DIR + "/") and p.count("/") == CS_DIR.count("/") + 1
                        and fnmatch.fnmatchcase(p.split("/")[-1].lower(), MATCH_GLOB))
            need(fl == sorted(x["name"] for x in matches), "%s: fls matches %s != mount %s" % (tag, fl, matches))
        v["matches"] = matches
        files = walk_files(mnt, ntfs=True)
        dirs = {}
        for d in INTERESTING_DIRS:
            p = os.path.join(mnt, d)
            if os.path.isdir(p):
                dirs[d or "/"] = dict(mft_record=os.stat(p).st_ino, entries=len(os.listdir(p)))
    os.rmdir(mnt)
    for e in matches:  # ntfsinfo refuses a volume that is mounted, hence after the umount
        nf = run(["ntfsinfo", "-F", "/" + e["path"], vol])
        m = re.search(r"Dumping Inode (\d+)", nf)
        need(m and int(m.group(1)) == e["mft_record"], "%s: ntfsinfo -F inode mismatch for %s" % (tag, e["name"]))
    if matches:
        tree, _ = parse_index_dump(run(["ntfsinfo", "-v", "-i", str(dirs[CS_DIR]["mft_record"]), vol]))
        for e in matches:
            e["index_entries"] = index_facts(tree, e["mft_record"])
            names = sorted(x["name"] for x in e["index_entries"])
            need(names == sorted([e["name"]] + ([e["dos_name"]] if e["dos_name"] else [])),
                 "%s: index entries of %s: %s" % (tag, e["name"], names))
    for d, e in dirs.items():
        text = run(["istat"] + tsk_args(ss, off, imgtype) + [img, str(e["mft_record"])])
        m = re.search(r"^Type: \$INDEX_ROOT \(144-\d+\)\s+Name: \$I30\s+Resident\s+size: (\d+)", text, re.M)
        need(m, "%s: no $INDEX_ROOT in istat of %s" % (tag, d))
        e["index_root_size"] = int(m.group(1))
        m = re.search(r"^Type: \$INDEX_ALLOCATION \(160-\d+\)\s+Name: \$I30\s+Non-Resident\s+size: (\d+)", text, re.M)
        e["index_allocation_size"] = int(m.group(1)) if m else None
        rc, dump, err = run(["ntfsinfo", "-v", "-i", str(e["mft_record"]), vol], check=False)
        if "Corrupt attribute 0xa0" in err and e["index_allocation_size"] > 65536:
            # libntfs-3g's ntfs_attr_readall() refuses attributes over 64 KiB, so ntfsinfo cannot
            # dump big directories; fsstat/ntfsfix/ntfs-3g are fine with them.
            e["index_depth"] = e["index_blocks_in_use"] = None
            e["note"] = "ntfsinfo -v cannot dump an $INDEX_ALLOCATION over 64 KiB: depth unknown (>= 2)"
        else:
            need(rc == 0, "%s: ntfsinfo -v -i %d failed: %s" % (tag, e["mft_record"], err))
            tree, e["index_depth"] = parse_index_dump(dump)
            e["index_blocks_in_use"] = len(tree) - 1
            need((e["index_depth"] == 1) == (e["index_allocation_size"] is None),
                 "%s: %s depth vs allocation" % (tag, d))
    v["directories"] = dirs
    for rel, e in files.items():
        need(fls.get(rel) == e["mft_record"], "%s: fls/ntfs-3g disagree on %s" % (tag, rel))
    write_json(os.path.join(outdir, files_json_name), files)
    v["files_sha256"] = files_json_name
    v["file_count"] = len(files)
    v["times_source"] = "istat -z UTC $STANDARD_INFORMATION (cross-checked with ntfs-3g xattr system.ntfs_times)"
    os.unlink(vol)
    return v


def read_vfat_volume(img, ss, part_no, off, size, imgtype, work, files_json_name, outdir, probe):
    vol = os.path.join(work, "rb-%s-%d.vfat" % (os.path.basename(img), off))
    with open(vol, "wb") as f:
        f.truncate(size)
    sparse_copy(img, vol, src_off=off, length=size)
    fs = parse_kv(run(["fsstat"] + tsk_args(ss, off, imgtype) + [img]))
    need(fs.get("File System Type", "").startswith("FAT"), "%s@%d: fsstat says %s" % (img, off, fs.get("File System Type")))
    dst = os.path.join(work, "rb-%s-%d.vfat.d" % (os.path.basename(img), off))
    os.makedirs(dst)
    run(["mcopy", "-s", "-n", "-m", "-i", vol, "::/", dst], env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    files = walk_files(dst, ntfs=False)
    shutil.rmtree(dst)
    os.unlink(vol)
    write_json(os.path.join(outdir, files_json_name), files)
    tsr = re.match(r"0 - (\d+)", fs["Total Range"])
    return dict(partition=part_no, offset=off, fs="vfat", fat_type=fs["File System Type"],
                label=probe.get("LABEL"), serial=fs["Volume ID"].lower().replace("0x", "").zfill(8),
                cluster_size=int(fs["Cluster Size"]), sector_size=int(fs["Sector Size"]),
                mft_record_size=None, index_record_size=None,
                volume_size=(int(tsr.group(1)) + 1) * int(fs["Sector Size"]),
                windows=False, crowdstrike_dir=False, matches=[],
                files_sha256=files_json_name, file_count=len(files))


def read_image(name, outdir, work, container="raw"):
    img = os.path.join(outdir, name)
    qi = json.loads(run(["qemu-img", "info", "--output=json", img]))
    need(qi["format"] == "raw", "%s: qemu-img sees %s" % (name, qi["format"]))
    scheme, ss, parts, table = read_table(img)
    if scheme != "none":
        mmls_check(img, ss, parts)
    else:
        rc, out, err = run(["mmls", img], check=False)
        need(rc != 0, "%s: mmls found a partition table on a bare volume" % name)
    regions = [(p["number"], p["start"], p["size"], p["type"]) for p in parts
               if p["type"] not in ("5", "f", "85")]
    if scheme == "none":
        regions = [(None, 0, qi["virtual-size"], None)]
    vols = []
    for num, off, size, ptype in regions:
        probe = blkid_probe(img, off)
        fsn = probe.get("TYPE")
        fj = "%s.vol%d.files.json" % (name, num or 0)
        if fsn == "ntfs":
            v = read_ntfs_volume(img, ss, num, off, size, None, work, fj, outdir)
            need(probe.get("UUID", "").lower() == v["serial"] and probe.get("LABEL") == v["label"],
                 "%s: blkid %s disagrees with ntfsinfo" % (name, probe))
        elif fsn == "vfat":
            v = read_vfat_volume(img, ss, num, off, size, None, work, fj, outdir, probe)
        else:
            need(fsn is None, "%s@%d: unexpected filesystem %s" % (name, off, fsn))
            v = dict(partition=num, offset=off, fs=None, label=None, serial=None, cluster_size=None,
                     sector_size=None, mft_record_size=None, index_record_size=None, volume_size=None,
                     windows=False, crowdstrike_dir=False, matches=[], files_sha256=None,
                     note="no filesystem found by blkid -p")
        vols.append(v)
    exp = dict(image=name, container=container, virtual_size=qi["virtual-size"],
               file_size=os.path.getsize(img), scheme=scheme, sector_size=ss, partitions=parts)
    if table:
        exp["table"] = table
    exp["volumes"] = vols
    return exp


def read_vhdx(out, src, sub, outdir, expected_raw):
    img = os.path.join(outdir, out)
    qi = json.loads(run(["qemu-img", "info", "-f", "vhdx", "--output=json", img]))
    run(["qemu-img", "check", "-f", "vhdx", img])
    run(["qemu-img", "compare", "-f", "vhdx", "-F", "raw", img, os.path.join(outdir, src)])
    raw = expected_raw[src]
    need(qi["virtual-size"] == raw["virtual_size"], "%s: virtual size %d != raw %d"
         % (out, qi["virtual-size"], raw["virtual_size"]))
    # libvhdi reads VHDX too: vhdiinfo, and sleuthkit through it
    vi = run(["vhdiinfo", img])
    need("VHDX" in vi and ("Disk type\t\t: %s" % sub.capitalize()) in vi
         and ("(%d bytes)" % raw["virtual_size"]) in vi, "%s: vhdiinfo says %s" % (out, vi))
    if raw["scheme"] != "none":
        mmls_check(img, raw["sector_size"], raw["partitions"], imgtype="vhd")
    for v in raw["volumes"]:
        if v["fs"] != "ntfs":
            continue
        names = {}
        for line in run(["fls", "-r", "-p"] + tsk_args(raw["sector_size"], v["offset"], "vhd") + [img]).splitlines():
            m = re.match(r"^(\S)/(\S)\s+(\*\s+)?(\d+)-(\d+)-(\d+):\t(.*)$", line)
            if m and not m.group(3):
                names[m.group(7)] = int(m.group(4))
        for mt in v["matches"]:
            need(names.get(mt["path"]) == mt["mft_record"], "%s: fls -i vhd misses %s" % (out, mt["path"]))
    exp = json.loads(json.dumps(raw))
    exp.update(image=out, container="vhdx-" + sub, virtual_size=qi["virtual-size"], file_size=os.path.getsize(img),
               same_content_as=src,
               note="volumes/partitions/files are those of %s: qemu-img compare says the virtual disks are "
                    "identical; files_sha256 lists point to %s's lists" % (src, src))
    fs_ = qi.get("format-specific", {}).get("data", {})
    if fs_:
        exp["qemu_format_specific"] = fs_
    exp["vhdx_virtual_disk_id"] = str(uuid.UUID(det_uuid(out, "vhdx-disk")))
    return exp


def read_vhd(out, src, sub, outdir, expected_raw):
    img = os.path.join(outdir, out)
    probed = json.loads(run(["qemu-img", "info", "--output=json", img]))["format"]
    qi = json.loads(run(["qemu-img", "info", "-f", "vpc", "--output=json", img]))
    # qemu-img check has no checker for vpc (exit 63 "does not support checks"); accept that
    run(["qemu-img", "check", "-f", "vpc", img], ok=(0, 63))
    run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", img, os.path.join(outdir, src)])
    raw = expected_raw[src]
    need(qi["virtual-size"] == raw["virtual_size"], "%s: virtual size %d != raw %d"
         % (out, qi["virtual-size"], raw["virtual_size"]))
    # sleuthkit through libvhdi: the same partitions and the same matches
    if raw["scheme"] != "none":
        mmls_check(img, raw["sector_size"], raw["partitions"], imgtype="vhd")
    for v in raw["volumes"]:
        if v["fs"] != "ntfs":
            continue
        names = {}
        for line in run(["fls", "-r", "-p"] + tsk_args(raw["sector_size"], v["offset"], "vhd") + [img]).splitlines():
            m = re.match(r"^(\S)/(\S)\s+(\*\s+)?(\d+)-(\d+)-(\d+):\t(.*)$", line)
            if m and not m.group(3):
                names[m.group(7)] = int(m.group(4))
        for mt in v["matches"]:
            need(names.get(mt["path"]) == mt["mft_record"], "%s: fls -i vhd misses %s" % (out, mt["path"]))
    exp = json.loads(json.dumps(raw))
    exp.update(image=out, container="vhd-" + sub, virtual_size=qi["virtual-size"], file_size=os.path.getsize(img),
               same_content_as=src,
               note="volumes/partitions/files are those of %s: qemu-img compare says the virtual disks are "
                    "identical; files_sha256 lists point to %s's lists" % (src, src))
    exp["qemu_probed_format"] = probed  # qemu's format probe looks for "conectix" at offset 0 only
    vi = qi.get("format-specific", {}).get("data", {})
    if vi:
        exp["qemu_format_specific"] = vi
    return exp


def read_qcow2(out, src, options, variant, outdir, expected_raw):
    img = os.path.join(outdir, out)
    qi = json.loads(run(["qemu-img", "info", "-f", "qcow2", "--output=json", img]))
    run(["qemu-img", "check", "-f", "qcow2", img])
    run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", img, os.path.join(outdir, src)])
    # libqcow reads it too (its own header parser, not QEMU's)
    qcowinfo = parse_kv(run(["qcowinfo", img]))
    raw = expected_raw[src]
    need(qi["virtual-size"] == raw["virtual_size"], "%s: virtual size %d != raw %d"
         % (out, qi["virtual-size"], raw["virtual_size"]))
    data = qi.get("format-specific", {}).get("data", {})
    version = 2 if data.get("compat") == "0.10" else 3
    need(qcowinfo.get("Format version") == str(version), "%s: qcowinfo version %r"
         % (out, qcowinfo.get("Format version")))
    snapshots = len(qi.get("snapshots", []))
    need(snapshots == (1 if variant == "snapshot" else 0), "%s: %d snapshots" % (out, snapshots))
    exp = json.loads(json.dumps(raw))
    exp.update(image=out, container="qcow2-v%d" % version, virtual_size=qi["virtual-size"],
               file_size=os.path.getsize(img), same_content_as=src, qcow2_variant=variant,
               qcow2=dict(version=version, cluster_size=qi["cluster-size"], snapshots=snapshots),
               note="volumes/partitions/files are those of %s: qemu-img compare says the virtual disks are "
                    "identical; files_sha256 lists point to %s's lists" % (src, src))
    if data:
        exp["qemu_format_specific"] = data
    return exp


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------

def build_bad(outdir, work, expected):
    bad = os.path.join(outdir, "bad")
    os.makedirs(bad)
    items = []

    def cp(src, dst):
        run(["cp", "--sparse=always", os.path.join(outdir, src), os.path.join(bad, dst)])
        return os.path.join(bad, dst)

    # truncated.raw: cut in the middle of the Windows volume's $MFT (cluster list from istat 0)
    g = expected["gpt-win.raw"]
    wv = [v for v in g["volumes"] if v.get("windows")][0]
    ist = parse_istat(run(["istat"] + tsk_args(g["sector_size"], wv["offset"], None)
                          + [os.path.join(outdir, "gpt-win.raw"), "0"]))
    cl = [c for c in ist["data"]["clusters"] if c]
    mid = cl[len(cl) // 2]
    cut = wv["offset"] + mid * wv["cluster_size"] + wv["cluster_size"] // 2
    readable = 0  # MFT bytes, in VCN order, that are still complete in the truncated file
    for c in cl:
        if wv["offset"] + (c + 1) * wv["cluster_size"] > cut:
            break
        readable += wv["cluster_size"]
    readable //= wv["mft_record_size"]
    need(all(m["mft_record"] >= readable for m in wv["matches"]), "truncated.raw: some 291 record is still readable")
    p = cp("gpt-win.raw", "truncated.raw")
    os.truncate(p, cut)
    items.append(dict(image="bad/truncated.raw", defect="truncated-in-mft", based_on="gpt-win.raw", cut_at=cut,
                      note="gpt-win.raw truncated inside the Windows volume's $MFT (MFT cluster %d of %d, "
                           "from istat 0); the CrowdStrike records lie beyond the end" % (len(cl) // 2, len(cl)),
                      mft_records_readable=readable))

    p = cp("gpt-win-fixed.vhd", "truncated.vhd")
    size = os.path.getsize(p)
    os.truncate(p, size - 100)
    items.append(dict(image="bad/truncated.vhd", defect="vhd-footer-truncated", based_on="gpt-win-fixed.vhd",
                      note="fixed VHD with the last 100 bytes (of the 512-byte footer) cut off"))

    p = cp("gpt-win-fixed.vhd", "badsum.vhd")
    with open(p, "r+b") as f:
        f.seek(size - 512 + 67)
        b = f.read(1)
        f.seek(size - 512 + 67)
        f.write(bytes([b[0] ^ 0x5A]))
    items.append(dict(image="bad/badsum.vhd", defect="vhd-footer-checksum", based_on="gpt-win-fixed.vhd",
                      note="fixed VHD, footer checksum (footer offset 64..67) last byte changed"))

    p = cp("gpt-win-dynamic.vhd", "badsum-dynamic.vhd")
    with open(p, "r+b") as f:
        foot = f.read(512)
        need(foot[:8] == b"conectix", "dynamic VHD has no footer copy at 0")
        hdr = struct.unpack(">Q", foot[16:24])[0]
        f.seek(hdr)
        need(f.read(8) == b"cxsparse", "no dynamic header at %d" % hdr)
        f.seek(hdr + 39)
        b = f.read(1)
        f.seek(hdr + 39)
        f.write(bytes([b[0] ^ 0x5A]))
    items.append(dict(image="bad/badsum-dynamic.vhd", defect="vhd-dynamic-header-checksum", based_on="gpt-win-dynamic.vhd", header_offset=hdr,
                      note="dynamic VHD, dynamic header checksum (header offset 36..39) last byte changed"))

    p = cp("gpt-win.raw", "gpt-badcrc.raw")
    ss = g["sector_size"]
    with open(p, "r+b") as f:
        for lba in (1, os.path.getsize(p) // ss - 1):
            f.seek(lba * ss)
            hdr = f.read(92)
            need(hdr[:8] == b"EFI PART", "no GPT header at LBA %d" % lba)
            f.seek(lba * ss + 16)
            f.write(bytes([hdr[16] ^ 0xFF]))
    items.append(dict(image="bad/gpt-badcrc.raw", defect="gpt-header-crc", based_on="gpt-win.raw",
                      note="header CRC32 (header offset 16) of both primary (LBA 1) and backup (last LBA) GPT headers broken"))

    p = cp("no-crowdstrike.raw", "ntfs-badgeom.raw")
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        primary = f.read(512)
        f.seek(size - 512)
        backup = f.read(512)
        need(primary[3:11] == b"NTFS    " and backup == primary, "backup boot sector not at the last sector")
        for off in (0, size - 512):
            f.seek(off + 11)
            f.write(struct.pack("<HB", 300, 0))
    items.append(dict(image="bad/ntfs-badgeom.raw", defect="ntfs-boot-geometry", based_on="no-crowdstrike.raw", backup_boot_offset=size - 512,
                      note="bare NTFS; bytes per sector = 300 and sectors per cluster = 0 in the boot sector "
                           "and in its backup (last sector)"))

    p = os.path.join(bad, "zeros.raw")
    with open(p, "wb") as f:
        f.truncate(10 * MiB)
    rc1, _, e1 = run(["ntfsinfo", "-m", "ntfs-badgeom.raw"], check=False, cwd=bad)
    rc2, _, e2 = run(["fsstat", "ntfs-badgeom.raw"], check=False, cwd=bad)
    need(rc1 != 0 and rc2 != 0, "ntfs-badgeom.raw: ntfsinfo/fsstat still accept it")
    items[-1]["observed"] = "ntfsinfo -m exit %d: %s; fsstat exit %d: %s" % (
        rc1, " ".join(e1.split())[:120], rc2, " ".join(e2.split())[:120])
    items.append(dict(image="bad/zeros.raw", defect="no-volume", note="10 MiB of zeros (sparse)"))
    p = os.path.join(bad, "random.raw")
    with open(p, "wb") as f:
        f.write(blob(MiB, "random.raw"))
    items.append(dict(image="bad/random.raw", defect="no-volume", note="1 MiB pseudo-random (shake_256)"))

    # Self-checks: each bad input must really be bad for an independent tool.
    item = lambda n: [x for x in items if x["image"] == "bad/" + n][0]
    rc, out, err = run(["sfdisk", "-J", "gpt-badcrc.raw"], check=False, cwd=bad)
    label = json.loads(out)["partitiontable"]["label"] if rc == 0 and out.strip() else None
    need(label != "gpt", "gpt-badcrc.raw: sfdisk still reads a GPT")
    rc, out, err = run(["sgdisk", "-v", "gpt-badcrc.raw"], check=False, cwd=bad)
    item("gpt-badcrc.raw")["observed"] = "sfdisk -J label: %s; sgdisk -v exit %d: %s" % (
        label, rc, " ".join((out + err).split())[:300])
    for n in ("badsum.vhd", "badsum-dynamic.vhd", "truncated.vhd"):
        rc, out, err = run(["qemu-img", "info", "-f", "vpc", n], check=False, cwd=bad)
        rc2, out2, err2 = run(["qemu-img", "check", "-f", "vpc", n], check=False, cwd=bad)
        item(n)["observed"] = "qemu-img info -f vpc exit %d%s; qemu-img check exit %d" % (
            rc, (": " + " ".join(err.split())[:200]) if rc else "", rc2)
    rc, out, err = run(["fsstat", "-o", str(wv["offset"] // ss), "truncated.raw"], check=False, cwd=bad)
    item("truncated.raw")["observed"] = "fsstat exit %d" % rc
    for it in items:
        path = os.path.join(outdir, it["image"])
        it.update(file_size=os.path.getsize(path), sha256=sha256_file(path))
    return items


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def stamp_value():
    h = hashlib.sha256()
    for p in [SCRIPT_PATH] + HELPER_FILES:
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


REQUIRED = ["mkntfs", "ntfs-3g", "ntfslabel", "ntfsinfo", "ntfsfix", "fls", "istat", "mmls", "fsstat",
            "sfdisk", "sgdisk", "blkid", "losetup", "mkfs.vfat", "mmd", "mcopy", "qemu-img", "umount", "cp"]


def up_to_date(outdir, stamp):
    try:
        with open(os.path.join(outdir, "stamp")) as f:
            if f.read().strip() != stamp:
                return False
        with open(os.path.join(outdir, "manifest.json")) as f:
            man = json.load(f)
        return all(os.path.exists(os.path.join(outdir, p)) for fx in man["fixtures"] for p in fx["files"])
    except (OSError, ValueError, KeyError):
        return False


def generate(outdir, jobs):
    t_start = time.time()
    work = os.path.join(outdir, "_work")
    os.makedirs(work)
    log("building images (%d jobs)" % jobs)
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        # biggest first
        order = sorted(FIXTURES, key=lambda fx: -sum(1 for p in fx["parts"] if p.get("content") == WIN) * fx["disk"])
        for f in [ex.submit(build_fixture, fx, outdir, work) for fx in order]:
            f.result()
        for f in [ex.submit(build_vhd, o, s, sub, outdir) for o, s, sub in VHDS]:
            f.result()
        for f in [ex.submit(build_qcow2, o, s, opts, var, outdir) for o, s, opts, var in QCOW2S]:
            f.result()
        for f in [ex.submit(build_vhdx, o, s, sub, outdir) for o, s, sub in VHDXS]:
            f.result()
    t_build = time.time() - t_start

    log("reading back expected answers")
    expected = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        futs = {fx["name"]: ex.submit(read_image, fx["name"], outdir, work) for fx in FIXTURES}
        for n, f in futs.items():
            expected[n] = f.result()
        for f in [ex.submit(read_vhd, o, s, sub, outdir, expected) for o, s, sub in VHDS]:
            e = f.result()
            expected[e["image"]] = e
        for f in [ex.submit(read_qcow2, o, s, opts, var, outdir, expected) for o, s, opts, var in QCOW2S]:
            e = f.result()
            expected[e["image"]] = e
        for f in [ex.submit(read_vhdx, o, s, sub, outdir, expected) for o, s, sub in VHDXS]:
            e = f.result()
            expected[e["image"]] = e

    log("checking the answers against the recipe")
    recipe_check(expected)

    log("making bad inputs")
    bad_items = build_bad(outdir, work, expected)

    fixtures = []
    for fx in FIXTURES:
        e = expected[fx["name"]]
        e["note"] = fx["note"]
        fixtures.append((fx["name"], e))
    for o, s, sub in VHDS + VHDXS:
        fixtures.append((o, expected[o]))
    for o, s, opts, var in QCOW2S:
        fixtures.append((o, expected[o]))
    man = dict(generator="tests/make-fixtures.py", stamp=None, fixtures=[])
    for name, e in fixtures:
        write_json(os.path.join(outdir, name + ".expected.json"), e)
        files = [name, name + ".expected.json"] + sorted({v["files_sha256"] for v in e["volumes"] if v.get("files_sha256")})
        # A readable image whose fix must be refused (L2 tables shared with a snapshot) is
        # "unwritable": every test of reading and checking takes it, none that expects a fix.
        kind = "unwritable" if e.get("qcow2_variant", "plain") == "snapshot" else "good"
        man["fixtures"].append(dict(name=name, kind=kind, container=e["container"], scheme=e["scheme"],
                                    files=files, expected=name + ".expected.json",
                                    file_size=os.path.getsize(os.path.join(outdir, name)),
                                    sha256=sha256_file(os.path.join(outdir, name)),
                                    matches=sum(len(v["matches"]) for v in e["volumes"]), note=e.get("note")))
    for it in bad_items:
        man["fixtures"].append(dict(name=it["image"], kind="bad", files=[it["image"]], **{k: v for k, v in it.items() if k != "image"}))
    shutil.rmtree(work)
    return man, expected, bad_items, t_build


def recipe_check(expected):
    """The read-back answers must agree with what the recipe meant to build (guards against tool surprises)."""
    for fx in FIXTURES:
        e = expected[fx["name"]]
        need(e["scheme"] == {"gpt": "gpt", "dos": "mbr", "none": "none"}[fx["scheme"]], "%s: scheme" % fx["name"])
        need(e["sector_size"] == fx["sector"], "%s: sector size %d" % (fx["name"], e["sector_size"]))
        for part in fx["parts"]:
            if part.get("extended"):
                continue
            v = [v for v in e["volumes"] if v["partition"] == part["n"]]
            need(len(v) == 1, "%s: volume for partition %s" % (fx["name"], part["n"]))
            v = v[0]
            need(v["offset"] == part["start"] * fx["sector"], "%s p%s: offset" % (fx["name"], part["n"]))
            need(v["fs"] == part.get("fs"), "%s p%s: fs %s" % (fx["name"], part["n"], v["fs"]))
            if v["fs"] != "ntfs":
                continue
            need(v["label"] == part["label"] and v["cluster_size"] == part["cluster"]
                 and v["sector_size"] == fx["sector"], "%s p%s: label/cluster/sector" % (fx["name"], part["n"]))
            need(v["windows"] == (part["content"] == WIN), "%s p%s: windows flag" % (fx["name"], part["n"]))
            need(v["crowdstrike_dir"] == (part.get("cs") is not None), "%s p%s: cs dir" % (fx["name"], part["n"]))
            want = {s["name"]: s for s in (part.get("cs") or [])}
            got = {m["name"]: m for m in v["matches"]}
            need(set(want) == set(got), "%s: matches %s != recipe %s" % (fx["name"], sorted(got), sorted(want)))
            for n, s in want.items():
                m = got[n]
                t = s["time"].replace(" ", "T") + "Z"
                need(m["created"] == m["modified"] == m["mft_modified"] == m["accessed"] == t,
                     "%s %s: times %s/%s/%s/%s, wanted %s" % (fx["name"], n, m["created"], m["modified"],
                                                              m["mft_modified"], m["accessed"], t))
                need(m["all_zero"] == (s["kind"] == "zeros"), "%s %s: all_zero" % (fx["name"], n))
                need(s["kind"] == "zeros" or m["header_hex"] == CS_HEADER.hex(), "%s %s: header" % (fx["name"], n))
                need(m["dos_name"] == s["dos"], "%s %s: dos name %s" % (fx["name"], n, m["dos_name"]))
                if s["fragmented"]:
                    need(m["data_runs"] > 1, "%s %s: not fragmented (%s runs)" % (fx["name"], n, m["data_runs"]))
                ie = [x for x in m["index_entries"] if x["name"] == n][0]
                where = ("root-only" if ie["node"] == "root" and v["directories"][CS_DIR]["index_depth"] == 1
                         else ("root-" if ie["node"] == "root" else "internal-") + "separator" if ie["has_subnode"]
                         else "leaf" if ie["node_is_leaf"] and ie["node"] != "root" else "?")
                need(where == s["index"], "%s %s: index entry is %s, recipe wants %s (%s)"
                     % (fx["name"], n, where, s["index"], ie))


def main():
    global LIBFAKETIME
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="rebuild even if OUTDIR/stamp is current")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temporary directory on failure")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    outdir = os.path.abspath(a.outdir)
    stamp = stamp_value()
    if not a.force and up_to_date(outdir, stamp):
        print("fixtures in %s are up to date (stamp %s)" % (outdir, stamp[:16]))
        return 0
    missing = [t for t in REQUIRED if shutil.which(t) is None]
    if missing:
        print("missing tools: %s\napt-get install -y ntfs-3g sleuthkit fdisk gdisk dosfstools mtools "
              "qemu-utils faketime" % " ".join(missing), file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("must run as root (FUSE mounts, loop devices)", file=sys.stderr)
        return 2
    LIBFAKETIME = find_libfaketime()

    t0 = time.time()
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, ".%s.tmp-%d" % (os.path.basename(outdir), os.getpid()))
    ok = False
    try:
        os.makedirs(tmp)
        man, expected, bad_items, t_build = generate(tmp, a.jobs)
        man["stamp"] = stamp
        write_json(os.path.join(tmp, "manifest.json"), man)
        with open(os.path.join(tmp, "stamp"), "w") as f:
            f.write(stamp + "\n")
        old = None
        if os.path.exists(outdir):
            old = os.path.join(parent, ".%s.old-%d" % (os.path.basename(outdir), os.getpid()))
            os.rename(outdir, old)
        os.rename(tmp, outdir)
        if old:
            shutil.rmtree(old)
        ok = True
    except FixtureError as e:
        print("\nFIXTURE GENERATION FAILED:\n%s" % e, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print("\nFIXTURE GENERATION FAILED (unexpected error above)", file=sys.stderr)
        return 1
    finally:
        cleanup_leftovers()
        if not ok and os.path.exists(tmp):
            if a.keep_temp:
                print("temporary directory kept: %s" % tmp, file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)

    total = time.time() - t0
    print()
    print("%-24s %-11s %-5s %10s %9s  %s" % ("image", "container", "table", "virtual", "on disk", "volumes (label cluster matches)"))
    for fx in man["fixtures"]:
        p = os.path.join(outdir, fx["name"])
        if fx["kind"] in ("good", "unwritable"):
            e = expected[fx["name"]]
            vols = ", ".join("%s:%s/%s/%d" % (v["partition"] or "-", v["label"] or "-", v["cluster_size"] or "-",
                                              len(v["matches"])) for v in e["volumes"] if v["fs"])
            print("%-24s %-11s %-5s %9dM %8.1fM  %s" % (fx["name"], e["container"], e["scheme"],
                                                      e["virtual_size"] // MiB, disk_usage(p) / MiB, vols))
        else:
            print("%-24s %-11s %-5s %10s %8.1fM  %s" % (fx["name"], "bad", "", "", disk_usage(p) / MiB,
                                                      fx["note"][:60]))
    du = run(["du", "-sh", outdir]).split()[0]
    print("\ngenerated in %.1fs (images %.1fs); du -sh: %s" % (total, t_build, du))
    return 0


if __name__ == "__main__":
    sys.exit(main())
