fn main() {
    print!("{}", connector_spec::json_schema_text());
}
