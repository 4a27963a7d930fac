//! The registry: the functions a server offers, registered as ordinary Rust
//! closures. The homework's `register(func)` in Python learns nothing about
//! `func` until it is called; here the closure's parameter types are known
//! at compile time, so the registry derives from them the check of every
//! call's params (count and types, answered with -32602) and the description
//! that `rpc.describe` sends to clients.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::error::{ErrorCode, RpcError};

/// A Rust type that a parameter or a result can have, with the name the
/// description gives it (Python's names, since the homework's client is
/// Python): `int`, `str`, `list[int]`, `any`.
pub trait JsonType: Sized {
    /// The name in `rpc.describe` and in -32602 messages.
    fn type_name() -> String;
    /// The value as this type, or `None` when it has another type. No
    /// coercion: `1.0` is not an `int` and `"1"` is not one either.
    fn from_json(value: Value) -> Option<Self>;
    fn into_json(self) -> Value;
}

impl JsonType for i64 {
    fn type_name() -> String {
        "int".into()
    }
    fn from_json(value: Value) -> Option<i64> {
        // A number beyond i64 (or a float) is not an int we can compute on.
        value.as_i64()
    }
    fn into_json(self) -> Value {
        self.into()
    }
}

impl JsonType for String {
    fn type_name() -> String {
        "str".into()
    }
    fn from_json(value: Value) -> Option<String> {
        match value {
            Value::String(text) => Some(text),
            _ => None,
        }
    }
    fn into_json(self) -> Value {
        self.into()
    }
}

impl JsonType for bool {
    fn type_name() -> String {
        "bool".into()
    }
    fn from_json(value: Value) -> Option<bool> {
        value.as_bool()
    }
    fn into_json(self) -> Value {
        self.into()
    }
}

/// Any JSON value: the function looks at it itself (`echo`, `add`).
impl JsonType for Value {
    fn type_name() -> String {
        "any".into()
    }
    fn from_json(value: Value) -> Option<Value> {
        Some(value)
    }
    fn into_json(self) -> Value {
        self
    }
}

impl<T: JsonType> JsonType for Vec<T> {
    fn type_name() -> String {
        format!("list[{}]", T::type_name())
    }
    fn from_json(value: Value) -> Option<Vec<T>> {
        match value {
            Value::Array(items) => items.into_iter().map(T::from_json).collect(),
            _ => None,
        }
    }
    fn into_json(self) -> Value {
        Value::Array(self.into_iter().map(T::into_json).collect())
    }
}

/// A JSON object (the homework's bonus: maps).
impl JsonType for Map<String, Value> {
    fn type_name() -> String {
        "dict".into()
    }
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }
    fn into_json(self) -> Value {
        Value::Object(self)
    }
}

/// What a registered function may return: a value, or `Result` of a value
/// and the [`RpcError`] the client receives.
pub trait Returns {
    fn type_name() -> String;
    fn into_result(self) -> Result<Value, RpcError>;
}

impl<T: JsonType> Returns for Result<T, RpcError> {
    fn type_name() -> String {
        T::type_name()
    }
    fn into_result(self) -> Result<Value, RpcError> {
        self.map(T::into_json)
    }
}

macro_rules! returns_plain {
    ($($type:ty),*) => {$(
        impl Returns for $type {
            fn type_name() -> String {
                <$type as JsonType>::type_name()
            }
            fn into_result(self) -> Result<Value, RpcError> {
                Ok(self.into_json())
            }
        }
    )*};
}
returns_plain!(i64, String, bool, Value, Map<String, Value>);

impl<T: JsonType> Returns for Vec<T> {
    fn type_name() -> String {
        <Vec<T> as JsonType>::type_name()
    }
    fn into_result(self) -> Result<Value, RpcError> {
        Ok(self.into_json())
    }
}

/// A closure of `N` typed parameters. `Args` is the tuple of its parameter
/// types; it only exists so that one closure type has exactly one impl.
/// Implemented below for closures of 0 to 3 parameters.
pub trait Handler<Args, const N: usize>: Send + Sync + 'static {
    fn param_types() -> [String; N];
    fn returns() -> String;
    /// Converts the arguments (already `N` of them, in order) and calls.
    /// `Err(Err(i))`: argument `i` has the wrong type.
    fn call(&self, args: [Value; N]) -> Result<Result<Value, RpcError>, usize>;
}

macro_rules! handler {
    ($n:literal; $($arg:ident: $index:literal),*) => {
        impl<F, R, $($arg),*> Handler<($($arg,)*), $n> for F
        where
            F: Fn($($arg),*) -> R + Send + Sync + 'static,
            R: Returns,
            $($arg: JsonType,)*
        {
            fn param_types() -> [String; $n] {
                [$($arg::type_name()),*]
            }
            fn returns() -> String {
                R::type_name()
            }
            // Each argument variable is named like its type parameter.
            #[allow(unused_variables, unused_mut, non_snake_case)]
            fn call(&self, args: [Value; $n]) -> Result<Result<Value, RpcError>, usize> {
                let mut args = args.into_iter();
                $(
                    let $arg = args
                        .next()
                        .and_then($arg::from_json)
                        .ok_or($index as usize)?;
                )*
                Ok(self($($arg),*).into_result())
            }
        }
    };
}
handler!(0;);
handler!(1; A: 0);
handler!(2; A: 0, B: 1);
handler!(3; A: 0, B: 1, C: 2);

/// The type-erased form of a [`Handler`], so methods of different arity fit
/// in one table.
type Call = Box<dyn Fn(Vec<Value>) -> Result<Result<Value, RpcError>, usize> + Send + Sync>;

/// One registered function.
pub struct Method {
    params: Vec<(&'static str, String)>,
    returns: String,
    doc: &'static str,
    /// Its answer comes from the fake database, after `--db-latency`.
    waits_for_db: bool,
    call: Call,
}

impl std::fmt::Debug for Method {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Method")
            .field("params", &self.params)
            .field("returns", &self.returns)
            .finish_non_exhaustive()
    }
}

impl Method {
    /// Marks the function as a fake-DB query: the caller gets its answer
    /// only after `--db-latency`, and nobody blocks meanwhile.
    pub fn waits_for_db(&mut self) -> &mut Method {
        self.waits_for_db = true;
        self
    }

    /// `func1(x: int, y: int, z: int) -> int`
    pub fn signature(&self, name: &str) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(param, type_name)| format!("{param}: {type_name}"))
            .collect();
        format!("{name}({}) -> {}", params.join(", "), self.returns)
    }

    fn describe(&self, name: &str) -> Value {
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|(param, type_name)| json!({"name": param, "type": type_name}))
            .collect();
        json!({
            "name": name,
            "params": params,
            "returns": self.returns,
            "doc": self.doc,
            "signature": self.signature(name),
        })
    }

    /// Checks the params and calls the function; a param of the wrong type
    /// is answered with -32602, naming it.
    fn run(&self, name: &str, params: Params) -> Result<Value, RpcError> {
        let values = self.arrange(name, params)?;
        (self.call)(values).unwrap_or_else(|index| {
            let (param, type_name) = self
                .params
                .get(index)
                .map_or(("?", "?"), |(param, type_name)| (param, type_name));
            Err(RpcError::invalid_params(format!(
                "{}: `{param}` must be {type_name}",
                self.signature(name)
            )))
        })
    }

    /// Puts the params in order: a list must have exactly one value per
    /// parameter; an object must name every parameter and nothing else.
    fn arrange(&self, name: &str, params: Params) -> Result<Vec<Value>, RpcError> {
        let expected = self.params.len();
        let wrong = |got: String| {
            RpcError::invalid_params(format!(
                "{} takes {expected} params, got {got}",
                self.signature(name)
            ))
        };
        match params {
            Params::List(values) if values.len() == expected => Ok(values),
            Params::List(values) => Err(wrong(values.len().to_string())),
            Params::Named(mut map) => {
                let mut values = Vec::with_capacity(expected);
                for (param, _) in &self.params {
                    match map.remove(*param) {
                        Some(value) => values.push(value),
                        None => return Err(wrong(format!("no `{param}`"))),
                    }
                }
                match map.keys().next() {
                    Some(unknown) => Err(wrong(format!("an unknown `{unknown}`"))),
                    None => Ok(values),
                }
            }
        }
    }
}

/// A call's params, as the request gave them (absent params are an empty
/// list).
#[derive(Debug)]
pub enum Params {
    List(Vec<Value>),
    Named(Map<String, Value>),
}

/// The answer to one call: its result (or error), and whether it may only
/// be sent after the fake DB's latency.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Value, RpcError>,
    pub waits_for_db: bool,
}

/// The table of functions a server offers, by name (sorted, so
/// `rpc.list_methods` answers in a stable order).
#[derive(Debug, Default)]
pub struct Registry {
    methods: BTreeMap<&'static str, Method>,
}

/// The two introspection methods every registry answers itself.
const LIST_METHODS: &str = "rpc.list_methods";
const DESCRIBE: &str = "rpc.describe";
const LIST_METHODS_SIGNATURE: &str = "rpc.list_methods() -> list[str]";
const DESCRIBE_SIGNATURE: &str = "rpc.describe(name: str) -> dict";

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `function` under `name`; `params` names its parameters
    /// (the compiler checks there is one name per parameter), `doc` is the
    /// line `rpc.describe` shows.
    // ANCHOR: register
    pub fn register<Args, const N: usize, F>(
        &mut self,
        name: &'static str,
        params: [&'static str; N],
        doc: &'static str,
        function: F,
    ) -> &mut Method
    where
        F: Handler<Args, N>,
        Args: 'static,
    {
        let call: Call = Box::new(move |values: Vec<Value>| {
            // `arrange` made sure there are exactly N values.
            let args: [Value; N] = values.try_into().map_err(|_| 0usize)?;
            function.call(args)
        });
        let params = params.into_iter().zip(F::param_types()).collect();
        let method = Method {
            params,
            returns: F::returns(),
            doc,
            waits_for_db: false,
            call,
        };
        self.methods.entry(name).insert_entry(method).into_mut()
    }
    // ANCHOR_END: register

    /// The names a client may call, the introspection methods included.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.methods.keys().copied().collect();
        names.extend([LIST_METHODS, DESCRIBE]);
        names
    }

    /// Runs method `name` with `params`.
    pub fn call(&self, name: &str, params: Params) -> Outcome {
        let now = |result| Outcome {
            result,
            waits_for_db: false,
        };
        match name {
            LIST_METHODS => now(self
                .arrange_builtin(name, params)
                .map(|_| json!(self.names()))),
            DESCRIBE => now(self.describe(params)),
            _ => match self.methods.get(name) {
                None => now(Err(RpcError::new(
                    ErrorCode::MethodNotFound,
                    format!("no method named `{name}`; rpc.list_methods lists them"),
                ))),
                Some(method) => Outcome {
                    result: method.run(name, params),
                    waits_for_db: method.waits_for_db,
                },
            },
        }
    }

    /// The params of a built-in, checked like [`Method::arrange`] checks a
    /// registered function's: `rpc.describe` takes one, `rpc.list_methods`
    /// none.
    fn arrange_builtin(&self, name: &str, params: Params) -> Result<Vec<Value>, RpcError> {
        let (signature, count) = if name == DESCRIBE {
            (DESCRIBE_SIGNATURE, 1)
        } else {
            (LIST_METHODS_SIGNATURE, 0)
        };
        let values = match params {
            Params::List(values) => values,
            Params::Named(mut map) if name == DESCRIBE && map.len() == 1 => {
                map.remove("name").into_iter().collect()
            }
            Params::Named(map) => map.into_iter().map(|(_, value)| value).collect(),
        };
        if values.len() == count {
            Ok(values)
        } else {
            Err(RpcError::invalid_params(format!(
                "{signature} takes {count} params, got {}",
                values.len()
            )))
        }
    }

    fn describe(&self, params: Params) -> Result<Value, RpcError> {
        let values = self.arrange_builtin(DESCRIBE, params)?;
        let Some(Value::String(name)) = values.into_iter().next() else {
            return Err(RpcError::invalid_params(format!(
                "{DESCRIBE_SIGNATURE}: `name` must be str"
            )));
        };
        match name.as_str() {
            LIST_METHODS => Ok(
                json!({"name": LIST_METHODS, "params": [], "returns": "list[str]",
                "doc": "The names of the methods this server offers.",
                "signature": LIST_METHODS_SIGNATURE}),
            ),
            DESCRIBE => Ok(json!({"name": DESCRIBE,
                "params": [{"name": "name", "type": "str"}], "returns": "dict",
                "doc": "The params, result type and doc line of method `name`.",
                "signature": DESCRIBE_SIGNATURE})),
            _ => match self.methods.get(name.as_str()) {
                Some(method) => Ok(method.describe(&name)),
                None => Err(RpcError::failed(
                    "ValueError",
                    format!("no method named `{name}`"),
                )),
            },
        }
    }
}

/// The functions every server offers in `--mode rpc`: the homework's
/// `func1`, and one function per kind of value (ints, strings, lists, any
/// JSON), a failing one (`divide`) and a slow one (`query`).
// ANCHOR: standard
pub fn standard() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        let mut registry = Registry::new();
        registry.register(
            "func1",
            ["x", "y", "z"],
            "x + y ** z, the homework's example: func1(1, 2, 3) == 9.",
            func1,
        );
        registry.register(
            "echo",
            ["value"],
            "Returns `value` unchanged.",
            |value: Value| value,
        );
        registry.register(
            "add",
            ["a", "b"],
            "a + b: ints add, strings and lists concatenate.",
            add,
        );
        registry.register(
            "sum",
            ["values"],
            "The sum of a list of ints.",
            |values: Vec<i64>| {
                values
                    .into_iter()
                    .try_fold(0i64, i64::checked_add)
                    .ok_or_else(|| RpcError::overflow("sum"))
            },
        );
        registry.register(
            "upper",
            ["text"],
            "`text` in upper case.",
            |text: String| text.to_uppercase(),
        );
        registry.register(
            "divide",
            ["a", "b"],
            "a // b: integer division, rounding down like Python's //.",
            divide,
        );
        registry
            .register(
                "query",
                ["key"],
                "The fake database: the row for `key`, after --db-latency.",
                |key: String| format!("row for {key}"),
            )
            .waits_for_db();
        registry
    });
    &REGISTRY
}
// ANCHOR_END: standard

/// `x + y ** z`; overflow is an error, never a wrap (release builds) or a
/// panic (debug builds).
pub fn func1(x: i64, y: i64, z: i64) -> Result<i64, RpcError> {
    let Ok(exponent) = u32::try_from(z) else {
        return Err(if z < 0 {
            RpcError::failed("ValueError", "func1: z must not be negative")
        } else {
            RpcError::overflow("func1")
        });
    };
    y.checked_pow(exponent)
        .and_then(|power| x.checked_add(power))
        .ok_or_else(|| RpcError::overflow("func1"))
}

/// Python's `a + b` for ints, strings and lists.
pub fn add(a: Value, b: Value) -> Result<Value, RpcError> {
    match (a, b) {
        (Value::String(mut a), Value::String(b)) => {
            a.push_str(&b);
            Ok(a.into())
        }
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Ok(a.into())
        }
        (a, b) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a
                .checked_add(b)
                .map(Value::from)
                .ok_or_else(|| RpcError::overflow("add")),
            _ => Err(RpcError::invalid_params(
                "add(a: any, b: any) -> any: a and b must be two ints, two strs or two lists",
            )),
        },
    }
}

/// `a // b` as Python computes it: the quotient rounded down (toward minus
/// infinity), where Rust's `/` rounds toward zero.
pub fn divide(a: i64, b: i64) -> Result<i64, RpcError> {
    if b == 0 {
        return Err(RpcError::failed(
            "ZeroDivisionError",
            "integer division by zero",
        ));
    }
    let quotient = a
        .checked_div(b)
        .ok_or_else(|| RpcError::overflow("divide"))?;
    let inexact = a % b != 0;
    if inexact && ((a < 0) != (b < 0)) {
        Ok(quotient - 1)
    } else {
        Ok(quotient)
    }
}
