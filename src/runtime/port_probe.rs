//! Whether a host port is free (a bind fails while another socket holds it) and whether
//! something answers on it.

use crate::core::interfaces::PortProbe;
use std::net::{IpAddr, TcpListener};

pub struct BindProbe;

impl PortProbe for BindProbe {
    fn in_use(&self, addr: IpAddr, port: u16) -> bool {
        TcpListener::bind((addr, port)).is_err()
    }

    fn accepts(&self, addr: IpAddr, port: u16) -> bool {
        let timeout = std::time::Duration::from_millis(500);
        std::net::TcpStream::connect_timeout(&(addr, port).into(), timeout).is_ok()
    }
}
