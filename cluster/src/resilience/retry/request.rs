//! How a retried request tells the callee which attempt it is: the retry policy sets
//! the resend count (0 = first attempt, n = n-th retry) on the request before each
//! retry, and the request type keeps it where the callee's client can read it.
//!
//! ```text
//!  RetryOn::retry ─► req.set_resend_count(n) ─► http::Request: extension ResendCount(n)
//!                                                               + header x-faultline-resend-count: n (n ≥ 1)
//!                                              ─► client span: http.request.resend_count = n
//! ```

use http::{HeaderName, HeaderValue};

/// The header that marks a retry for the agent (`x-faultline-resend-count: n`, n ≥ 1);
/// the agent records it as `http.request.resend_count` (PRODUCT.md §4).
pub const RESEND_COUNT_HEADER: &str = "x-faultline-resend-count";

/// The resend count of an `http::Request`, as a request extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResendCount(pub u32);

/// A request the retry policy can send again.
pub trait Resendable: Sized {
    /// 0 for the first attempt, n for the n-th retry.
    fn resend_count(&self) -> u32;
    fn set_resend_count(&mut self, count: u32);
    /// A copy to send again, or `None` if this request cannot be resent (then it is
    /// sent once and never retried).
    fn try_clone(&self) -> Option<Self>;
}

/// Requests with a cloneable body (`Bytes`, `Full<Bytes>`, `String`, …): the count is the
/// [`ResendCount`] extension, mirrored in [`RESEND_COUNT_HEADER`] for retries.
impl<B: Clone> Resendable for http::Request<B> {
    fn resend_count(&self) -> u32 {
        self.extensions().get::<ResendCount>().map_or(0, |c| c.0)
    }

    fn set_resend_count(&mut self, count: u32) {
        self.extensions_mut().insert(ResendCount(count));
        let name = HeaderName::from_static(RESEND_COUNT_HEADER);
        if count == 0 {
            self.headers_mut().remove(name);
        } else {
            self.headers_mut().insert(name, HeaderValue::from(count));
        }
    }

    fn try_clone(&self) -> Option<Self> {
        let mut copy = http::Request::new(self.body().clone());
        *copy.method_mut() = self.method().clone();
        *copy.uri_mut() = self.uri().clone();
        *copy.version_mut() = self.version();
        *copy.headers_mut() = self.headers().clone();
        *copy.extensions_mut() = self.extensions().clone();
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_request_carries_its_resend_count_as_extension_and_header() {
        let mut request = http::Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:1/pay")
            .header("x-correlation-id", "c-1")
            .body("amount=3".to_owned())
            .unwrap();
        assert_eq!(request.resend_count(), 0);
        request.set_resend_count(2);
        let copy = request.try_clone().unwrap();
        assert_eq!(copy.resend_count(), 2);
        assert_eq!(
            copy.extensions().get::<ResendCount>(),
            Some(&ResendCount(2))
        );
        assert_eq!(copy.headers()[RESEND_COUNT_HEADER], "2");
        assert_eq!(copy.headers()["x-correlation-id"], "c-1");
        assert_eq!(copy.method(), "POST");
        assert_eq!(copy.uri(), "http://127.0.0.1:1/pay");
        assert_eq!(copy.body(), "amount=3");
        request.set_resend_count(0);
        assert!(request.headers().get(RESEND_COUNT_HEADER).is_none());
    }
}
