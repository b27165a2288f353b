#!/bin/sh
# Builds the VM image from Debian's packages: a debootstrap root file system with systemd,
# openssh-server, iproute2, iptables (legacy), ethtool and a kernel's modules, packed into an
# ext4 image without loop mounts. Run as root by pkg/provider/vm.
# HYPERVISOR uml: the User-Mode Linux kernel's modules (the kernel is /usr/bin/linux.uml).
# HYPERVISOR qemu: Debian's linux-image-amd64 inside, its kernel and initrd copied beside the
# image (QEMU boots them with -kernel/-initrd; no boot loader).
# Args: OUT SUITE MIRROR AUTHORIZED_KEY MAX_VMS SUBNET MAC_PREFIX HYPERVISOR
set -eu
out=$1 suite=$2 mirror=$3 key=$4 maxvms=$5 subnet=$6 macprefix=$7 hv=$8
case $hv in
uml) extra= root_dev=/dev/ubda size=2G ;;
qemu) extra=,linux-image-amd64,initramfs-tools root_dev=/dev/vda size=3G ;;
*) echo "build.sh: unknown hypervisor $hv" >&2; exit 2 ;;
esac
root=$out/root
rm -rf "$root" "$out/base.img.tmp"
mkdir -p "$root"
trap 'rm -rf "$root" "$out/base.img.tmp"' EXIT
echo "== debootstrap $suite from $mirror"
debootstrap --variant=minbase \
  --include=systemd-sysv,udev,openssh-server,iproute2,iptables,ethtool,procps,kmod$extra \
  "$suite" "$root" "$mirror"
if [ "$hv" = uml ]; then
  echo "== UML kernel modules"
  kver=$(ls /usr/lib/uml/modules | head -n 1)
  mkdir -p "$root/lib/modules"
  cp -a "/usr/lib/uml/modules/$kver" "$root/lib/modules/"
  chroot "$root" depmod "$kver"
else
  echo "== kernel and initrd for QEMU"
  # base.img, written last, marks a finished build: these may be overwritten before it
  kver=$(ls "$root/lib/modules" | head -n 1)
  cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
  cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
  echo "$kver" > "$out/kernel.version"
fi
echo "== configuration"
# nftables' nat does not work under UML's kernel: the legacy iptables
chroot "$root" update-alternatives --set iptables /usr/sbin/iptables-legacy
chroot "$root" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy
echo "$root_dev / ext4 defaults 0 1" > "$root/etc/fstab"
mkdir -p "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
printf '%s\n' "$key" > "$root/root/.ssh/authorized_keys"
chmod 600 "$root/root/.ssh/authorized_keys"
# UML's vector device vec0 is called eth0 in the guest, as on most VMs (the suite's self-tests
# throttle eth0); under QEMU the kernel's own name eth0 is kept (net.ifnames=0)
cat > "$root/etc/systemd/network/10-eth0.link" <<'LINK'
[Match]
OriginalName=vec0
[Link]
Name=eth0
LINK
# one static address per VM, chosen by its MAC
i=1
while [ "$i" -le "$maxvms" ]; do
  n=$((10 + i))
  cat > "$root/etc/systemd/network/10-vm$i.network" <<NET
[Match]
MACAddress=$macprefix:$(printf '%02x' "$n")
[Network]
Address=$subnet.$n/24
NET
  i=$((i + 1))
done
# UML's vector driver carries ~2 Mbps with offloads on, and turns them on at each link-up:
# turn them off once eth0 (vec0) is up, before sshd starts (the provider does it again).
# virtio-net under QEMU needs no such thing.
offloads=
if [ "$hv" = uml ]; then
offloads=pathcost-offloads
cat > "$root/usr/local/sbin/pathcost-offloads" <<'SH'
#!/bin/sh
i=0
while [ "$i" -lt 100 ] && ! ip link show eth0 2>/dev/null | grep -q LOWER_UP; do sleep 0.1; i=$((i + 1)); done
exec ethtool -K eth0 tso off gso off tx off sg off gro off
SH
chmod 755 "$root/usr/local/sbin/pathcost-offloads"
cat > "$root/etc/systemd/system/pathcost-offloads.service" <<'UNIT'
[Unit]
Description=pathcost: offloads off on eth0 (vec0)
After=systemd-networkd.service
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/pathcost-offloads
[Install]
WantedBy=multi-user.target
UNIT
fi
chroot "$root" systemctl enable systemd-networkd ssh $offloads
for u in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
         e2scrub_all.timer fstrim.timer getty@tty1.service serial-getty@ttyS0.service \
         systemd-timesyncd.service console-getty.service; do
  chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
done
echo "UseDNS no" > "$root/etc/ssh/sshd_config.d/pathcost.conf"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$out/host_ed25519_key.pub"
echo "== ext4 image"
mkfs.ext4 -q -F -L vmroot -d "$root" "$out/base.img.tmp" "$size"
mv "$out/base.img.tmp" "$out/base.img"
echo "== done"
