// Service used by the live Thrift test (written for these tests).
namespace py live

struct Row {
  1: i64 id
  2: string name
}

exception DivideByZero {
  1: string why
}

service Live {
  i32 add(1: i32 a, 2: i32 b),
  double divide(1: double a, 2: double b) throws (1: DivideByZero err),
  string echo(1: string s),
  list<Row> rows(1: i32 n),
  map<string, i32> counts(1: list<string> words),
  void ping(),
  oneway void notify(1: string msg)
}
