//! Allocators of the simulated cluster: Service cluster IPs from the service CIDR
//! (10.96.0.0/12, the kubeadm default) and node ports from 30000-32767.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// The service CIDR, as a real server names it in messages.
pub(crate) const SERVICE_CIDR: &str = "10.96.0.0/12";
const CIDR_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const CIDR_SIZE: u32 = 1 << 20;
/// The first usable address, kept for `default/kubernetes` as a real cluster does.
pub(crate) const KUBERNETES_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// The node port range.
pub(crate) const NODE_PORT_MIN: i64 = 30000;
/// The node port range (inclusive).
pub(crate) const NODE_PORT_MAX: i64 = 32767;

/// Cluster IPs in use.
#[derive(Debug, Default, Clone)]
pub(crate) struct IpAllocator {
    used: HashSet<u32>,
}

impl IpAllocator {
    /// Why `ip` cannot be allocated, if it cannot.
    pub(crate) fn check(&self, ip: Ipv4Addr) -> Result<(), String> {
        let n = u32::from(ip);
        if !(CIDR_BASE + 1..CIDR_BASE + CIDR_SIZE - 1).contains(&n) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
            ));
        }
        if self.used.contains(&n) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Marks `ip` used (after [`check`](Self::check)).
    pub(crate) fn take(&mut self, ip: Ipv4Addr) {
        self.used.insert(u32::from(ip));
    }

    /// Allocates a free address at random; `None` when the range is full.
    pub(crate) fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = CIDR_SIZE - 2;
        let kube = u32::from(KUBERNETES_IP);
        // Full when every address but `default/kubernetes`'s (taken or not) is used.
        let others = self.used.len() as u32 - u32::from(self.used.contains(&kube));
        if others >= size - 1 {
            return None;
        }
        let start: u32 = rand::random::<u32>() % size;
        for i in 0..size {
            let n = CIDR_BASE + 1 + (start + i) % size;
            if n != kube && !self.used.contains(&n) {
                self.used.insert(n);
                return Some(Ipv4Addr::from(n));
            }
        }
        None
    }

    /// Frees an address (ignores anything not an IPv4 address).
    pub(crate) fn release(&mut self, ip: &str) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            self.used.remove(&u32::from(ip));
        }
    }
}

/// Node ports in use.
#[derive(Debug, Default, Clone)]
pub struct PortAllocator {
    used: HashSet<i64>,
}

impl PortAllocator {
    /// Why `port` cannot be allocated, if it cannot.
    pub fn check(&self, port: i64) -> Result<(), String> {
        if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&port) {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"
            ));
        }
        if self.used.contains(&port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Marks `port` used.
    pub fn take(&mut self, port: i64) {
        self.used.insert(port);
    }

    /// How many ports are free.
    pub fn free(&self) -> usize {
        (NODE_PORT_MAX - NODE_PORT_MIN + 1) as usize - self.used.len()
    }

    /// Allocates a free port at random; `None` when the range is full.
    pub fn allocate(&mut self) -> Option<i64> {
        let size = NODE_PORT_MAX - NODE_PORT_MIN + 1;
        let start = (rand::random::<u32>() as i64) % size;
        for i in 0..size {
            let p = NODE_PORT_MIN + (start + i) % size;
            if !self.used.contains(&p) {
                self.used.insert(p);
                return Some(p);
            }
        }
        None
    }

    /// Frees a port.
    pub fn release(&mut self, port: i64) {
        self.used.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_unique_and_in_range() {
        let mut a = IpAllocator::default();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let ip = a.allocate().unwrap();
            assert!(seen.insert(ip));
            assert_eq!(ip.octets()[0], 10);
            assert!((96..112).contains(&ip.octets()[1]));
            assert_ne!(ip, KUBERNETES_IP);
        }
        assert!(a.check("10.200.0.1".parse().unwrap()).is_err());
        let used = *seen.iter().next().unwrap();
        assert!(a.check(used).unwrap_err().contains("already allocated"));
    }

    #[test]
    fn node_ports_exhaust() {
        let mut a = PortAllocator::default();
        for _ in 0..2768 {
            assert!(a.allocate().is_some());
        }
        assert!(a.allocate().is_none());
        assert!(a.check(80).unwrap_err().contains("valid range"));
    }
}
