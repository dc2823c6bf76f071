use super::{FieldError, Reason};
use ipnet::IpNet;
use std::net::IpAddr;

/// An LG-WAN network a municipality declares, in CIDR form. A network wider
/// than /8 (IPv4) or /32 (IPv6) is refused: it would let the internet in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(IpNet);

impl Network {
    pub const FIELD: &'static str = "LG-WANネットワーク";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        let net: IpNet = s
            .parse()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| err(Reason::NotCidr))?;
        let too_broad = match net {
            IpNet::V4(n) => n.prefix_len() < 8,
            IpNet::V6(n) => n.prefix_len() < 32,
        };
        if too_broad {
            return Err(err(Reason::CidrTooBroad));
        }
        Ok(Network(net.trunc()))
    }

    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.0.contains(addr)
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Network::parse("10.20.30.40/16").unwrap().to_string(),
            "10.20.0.0/16"
        );
        assert_eq!(
            Network::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert!(Network::parse("2001:db8::/48").is_ok());
        assert_eq!(
            Network::parse("0.0.0.0/0").unwrap_err().reason,
            Reason::CidrTooBroad
        );
        assert_eq!(
            Network::parse("10.0.0.0/33").unwrap_err().reason,
            Reason::NotCidr
        );
        assert_eq!(
            Network::parse("lgwan").unwrap_err().field,
            "LG-WANネットワーク"
        );
    }

    #[test]
    fn membership() {
        let n = Network::parse("10.20.0.0/16").unwrap();
        assert!(n.contains(&"10.20.9.9".parse().unwrap()));
        assert!(!n.contains(&"10.21.0.1".parse().unwrap()));
    }
}
