//! A DNS server for the tests on 127.0.0.1:0 (UDP; messages built with
//! hickory-proto, the resolver's own protocol crate).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

/// A DNS server for the tests: A records from a table the test changes, TTL 1s;
/// AAAA questions get an empty answer, unknown names NXDOMAIN.
pub struct Dns {
    pub addr: SocketAddr,
    table: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Dns {
    pub fn start() -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind dns");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("dns addr");
        let table: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (Arc::clone(&table), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let reply = answer(&query, &t.lock().unwrap());
                let _ = socket.send_to(&reply.to_vec().expect("encode"), from);
            }
        });
        Dns {
            addr,
            table,
            stop,
            thread: Some(thread),
        }
    }

    /// `name` resolves to `ips` from now on (empty: NXDOMAIN).
    pub fn set(&self, name: &str, ips: &[[u8; 4]]) {
        let mut table = self.table.lock().unwrap();
        if ips.is_empty() {
            table.remove(name);
        } else {
            table.insert(
                name.to_string(),
                ips.iter().map(|o| Ipv4Addr::from(*o)).collect(),
            );
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(query: &Message, table: &HashMap<String, Vec<Ipv4Addr>>) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    for q in query.queries() {
        reply.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        match table.get(&name) {
            None => {
                reply.set_response_code(ResponseCode::NXDomain);
            }
            Some(ips) if q.query_type() == RecordType::A => {
                for ip in ips {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 1, RData::A(A(*ip))));
                }
            }
            Some(_) => {}
        }
    }
    reply
}
