//! `stub_status`: nginx's status text, byte for byte (trailing spaces
//! included), from a [`CounterSnapshot`].

use crate::access::zones::CounterSnapshot;

/// The body nginx's `ngx_http_stub_status_module` writes.
pub fn render(s: &CounterSnapshot) -> String {
    format!(
        "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
        s.active, s.accepted, s.handled, s.requests, s.reading, s.writing, s.waiting
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_nginx_s() {
        let s = CounterSnapshot {
            active: 2,
            accepted: 10,
            handled: 10,
            requests: 31,
            reading: 0,
            writing: 1,
            waiting: 1,
        };
        assert_eq!(
            render(&s),
            "Active connections: 2 \nserver accepts handled requests\n 10 10 31 \nReading: 0 Writing: 1 Waiting: 1 \n"
        );
    }
}
