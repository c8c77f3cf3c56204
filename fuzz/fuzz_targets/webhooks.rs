#![no_main]

libfuzzer_sys::fuzz_target!(
    init: {
        // A panic the code catches and turns into an error is not a crash.
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| remediator::fuzz::webhooks(data)
);
