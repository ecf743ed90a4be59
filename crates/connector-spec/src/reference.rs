pub fn reference_markdown() -> String {
    String::new()
}
