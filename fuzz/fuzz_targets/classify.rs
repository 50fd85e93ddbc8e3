//! An upstream's message, as a transport hands it over (JSON text), sorted by
//! `jsonrpc::classify_raw` (the dispatcher) and read by `jsonrpc::answer_to` (an HTTP answer).
//!
//! Holds: a batch gives one entry per element; a result stays JSON text; `answer_to` finds
//! exactly the answer `classify_raw` sees, and nothing in a message that is not one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway_core::fuzzing::{Incoming, answer_to, classify_raw};
use serde_json::Value;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A transport hands over only what reads as JSON.
    let Ok(message) = serde_json::from_str::<Box<RawValue>>(text) else {
        return;
    };
    let sorted = classify_raw(&message);
    if let Ok(batch) = serde_json::from_str::<Vec<&RawValue>>(message.get()) {
        assert_eq!(
            sorted.len(),
            batch.len(),
            "a batch sorted into another number of messages"
        );
        return;
    }
    let [only] = sorted.as_slice() else {
        panic!("one message sorted into {}", sorted.len());
    };
    let probe = Value::String("an id no message has".repeat(3));
    match only {
        Incoming::Response { id, outcome } => {
            if let Ok(result) = outcome {
                serde_json::from_str::<&RawValue>(result.get()).expect("a result is JSON text");
            }
            let found = answer_to(message.get(), id).expect("the answer to its own id");
            match (&found, outcome) {
                (Ok(found), Ok(result)) => assert_eq!(found.get(), result.get()),
                (Err(found), Err(error)) => assert_eq!(found, error),
                _ => panic!("answer_to and classify_raw disagree: {found:?} and {outcome:?}"),
            }
            if *id != probe {
                assert!(
                    answer_to(message.get(), &probe).is_none(),
                    "an answer to another id"
                );
            }
        }
        Incoming::Request { id, .. } => {
            assert!(
                answer_to(message.get(), id).is_none(),
                "a request read as an answer"
            );
        }
        Incoming::Notification { .. } | Incoming::Invalid(_) => {
            assert!(
                answer_to(message.get(), &probe).is_none(),
                "an answer in a non-answer"
            );
            assert!(
                answer_to(message.get(), &Value::Null).is_none(),
                "an answer in a non-answer"
            );
        }
    }
});
