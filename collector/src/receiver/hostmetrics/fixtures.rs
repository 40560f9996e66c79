//! Real `/proc` files captured on a 2-CPU Linux 6.x VM (the development machine), shared by the
//! parser unit tests and the `root_path` test. Long or repetitive files are trimmed to a few lines;
//! a swap device and a few connection states were added where the machine had none.

/// `/proc/stat` (the `intr` line trimmed).
pub const PROC_STAT: &str = r#"cpu  1091822 32856 206748 979996 4515 0 20951 1871 0 0
cpu0 543405 16512 100612 492311 1652 0 12932 945 0 0
cpu1 548417 16344 106136 487684 2863 0 8018 925 0 0
intr 25267168 0 0 0 0 0 0 0 0 0 0 0
ctxt 82560001
btime 1795593669
processes 264222
procs_running 3
procs_blocked 0
softirq 62779199 0 869538 6 58400585 1403747 0 14016 589892 29520 1471895
"#;

/// `/proc/meminfo`.
pub const PROC_MEMINFO: &str = r#"MemTotal:       24684084 kB
MemFree:         8078116 kB
MemAvailable:   23509680 kB
Buffers:          444268 kB
Cached:         14255456 kB
SwapCached:            0 kB
Active:          6235360 kB
Inactive:        8890672 kB
Active(anon):       1564 kB
Inactive(anon):   433760 kB
Active(file):    6233796 kB
Inactive(file):  8456912 kB
Unevictable:       15540 kB
Mlocked:           14460 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Zswap:                 0 kB
Zswapped:              0 kB
Dirty:            152552 kB
Writeback:             0 kB
AnonPages:        442024 kB
Mapped:           205192 kB
Shmem:              8872 kB
KReclaimable:    1142136 kB
Slab:            1250812 kB
SReclaimable:    1142136 kB
SUnreclaim:       108676 kB
KernelStack:        1944 kB
PageTables:         4212 kB
SecPageTables:         0 kB
NFS_Unstable:          0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
CommitLimit:    12342040 kB
Committed_AS:     325600 kB
VmallocTotal:   34359738367 kB
VmallocUsed:       14716 kB
VmallocChunk:          0 kB
Percpu:              736 kB
AnonHugePages:         0 kB
ShmemHugePages:        0 kB
ShmemPmdMapped:        0 kB
FileHugePages:    335872 kB
FilePmdMapped:         0 kB
Balloon:               0 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:               0 kB
DirectMap4k:       30720 kB
DirectMap2M:     2066432 kB
DirectMap1G:    25165824 kB
"#;

/// `/proc/loadavg`.
pub const PROC_LOADAVG: &str = r#"3.83 3.01 2.43 4/119 4547
"#;

/// `/proc/uptime`.
pub const PROC_UPTIME: &str = r#"11747.77 9799.96
"#;

/// `/proc/diskstats`: idle loop and zram devices (all zero) and the busy `vda`.
pub const PROC_DISKSTATS: &str = r#"   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       2 loop2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       3 loop3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       4 loop4 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       5 loop5 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       6 loop6 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       7 loop7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 1915838 64881 53001498 2599095 911734 827800 404049696 1926747 0 317028 4672135 332465 48 251478288 46178 185176 100113
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"#;

/// `/proc/net/dev`.
pub const PROC_NET_DEV: &str = r#"Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 111973570369 59041945    0    0    0     0          0         0 111973570369 59041945    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 1807927297  112465    0    0    0     0          0         0  8597539   77983    0    0    0     0       0          0
"#;

/// `/proc/net/tcp` (first five sockets, plus an ESTABLISHED and a FIN_WAIT1 one).
pub const PROC_NET_TCP: &str = r#"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1060 1 000000006f5be451 100 0 0 10 0                      
   1: 0100007F:4A37 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 430128 1 00000000836d54a1 100 0 0 10 0                    
   2: 0100007F:4A37 0100007F:E91E 06 00000000:00000000 03:000007D1 00000000     0        0 0 3 00000000589b3ff4                                      
   3: 0100007F:4A37 0100007F:AA0A 06 00000000:00000000 03:00001132 00000000     0        0 0 3 000000007779d88d                                      
   4: 0100007F:4A37 0100007F:E90E 06 00000000:00000000 03:0000070A 00000000     0        0 0 3 00000000d706c593                                      
   5: 0100007F:B096 0100007F:4A37 01 00000000:00000000 00:00000000 00000000     0        0 431877 1 00000000c40fd2a8 20 4 30 10 -1                   
   6: 0100007F:B0A2 0100007F:4A37 04 00000000:00000000 01:00000014 00000000     0        0 0 1 00000000593b183e 20 4 30 10 -1                        
"#;

/// `/proc/net/tcp6` (one IPv6 listener added).
pub const PROC_NET_TCP6: &str = r#"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0
"#;

/// `/proc/vmstat` (the counters around the paging ones).
pub const PROC_VMSTAT: &str = r#"nr_free_pages 2019542
nr_zone_inactive_anon 108440
pgpgin 26500749
pgpgout 202024848
pswpin 0
pswpout 0
pgalloc_normal 439793970
pgfree 468587929
pgactivate 12661832
pgfault 428516880
pgmajfault 76786
pgrefill 914260
oom_kill 0
"#;

/// `/proc/1/mountinfo`.
pub const PROC_1_MOUNTINFO: &str = r#"22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,nr_inodes=3083615,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"#;

/// `/proc/filesystems`.
pub const PROC_FILESYSTEMS: &str = r#"nodev	sysfs
nodev	tmpfs
nodev	proc
nodev	cgroup
nodev	cgroup2
nodev	cpuset
nodev	devtmpfs
nodev	binfmt_misc
nodev	debugfs
nodev	tracefs
nodev	securityfs
nodev	sockfs
nodev	bpf
nodev	pipefs
nodev	ramfs
nodev	hugetlbfs
nodev	devpts
	ext3
	ext2
	ext4
	squashfs
nodev	autofs
	fuseblk
nodev	fuse
nodev	fusectl
nodev	overlay
	xfs
	erofs
nodev	mqueue
	btrfs
nodev	pstore
"#;

/// `/proc/1/stat`.
pub const PROC_1_STAT: &str = r#"1 (process_api) S 0 0 0 0 -1 4194560 92909 406364722 0 73975 459 3909 1061562 227079 10 -10 13 0 24 45387776 3594 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"#;

/// `/proc/swaps` with one zram swap device (the machine has none).
pub const PROC_SWAPS: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
/dev/zram0                              partition\t4194300\t\t524288\t\t100
";

/// `/proc/swaps` without swap devices (this machine).
pub const PROC_SWAPS_NONE: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
