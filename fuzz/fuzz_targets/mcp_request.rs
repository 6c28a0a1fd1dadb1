#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpgate::fuzzing::mcp_request(data));
