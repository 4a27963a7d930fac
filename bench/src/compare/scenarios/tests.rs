//! The plan of a comparison: bounds, cells per scenario and model, and
//! what `--clients`, `--quick` and nginx change.

use super::*;

#[test]
fn bounds_follow_littles_law() {
    let cell = |scenario, clients| Cell {
        scenario,
        model: "x".to_string(),
        keepalive: true,
        clients,
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(5),
        connect_rate: None,
        rate: None,
        call: None,
        file: None,
    };
    let sweep = cell(Scenario::HttpSweep, 100);
    let bound = |capacity| sweep.bound_rps(capacity).expect("http has a bound");
    assert!((bound(Some(1)) - 3.33).abs() < 0.01);
    assert!((bound(Some(10)) - 33.3).abs() < 0.1);
    assert!((bound(None) - 333.3).abs() < 0.1);
    let lab = cell(Scenario::Lab, 100);
    assert!((lab.bound_rps(None).expect("http") - 9.71).abs() < 0.01);
    assert!((lab.bound_rps(Some(1)).expect("http") - 3.33).abs() < 0.01);
    assert_eq!(cell(Scenario::EchoSweep, 10).bound_rps(None), None);
    let open = Cell {
        rate: Some(66.7),
        ..cell(Scenario::HttpOpen, 50)
    };
    assert!((open.bound_rps(Some(10)).expect("http") - 33.3).abs() < 0.1);
    assert!((open.bound_rps(None).expect("http") - 66.7).abs() < 0.1);
}

#[test]
fn the_open_loop_runs_pools_at_their_bound_and_twice_it() {
    let rates = open_loop_rates(Some(10), None);
    assert!((rates[0] - 33.3).abs() < 0.1 && (rates[1] - 66.7).abs() < 0.1);
    assert_eq!(open_loop_rates(None, None), OPEN_LOOP_RATES.to_vec());
    assert_eq!(open_loop_rates(Some(1), Some(&[7])), vec![7.0]);
}

#[test]
fn models_by_name_or_number() {
    let names = |list: &[&str]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        resolve_models(&names(&["07", "01-blocking"])),
        Ok(names(&["07-epoll", "01-blocking"]))
    );
    assert_eq!(
        resolve_models(&names(&["all"])).map(|all| all.len()),
        Ok(MODELS.len())
    );
    assert!(resolve_models(&names(&["0"])).is_err());
}

#[test]
fn the_plan_covers_the_matrix() {
    let request = PlanRequest {
        scenarios: Scenario::ALL.to_vec(),
        models: MODELS.iter().map(ToString::to_string).collect(),
        clients: None,
        quick: true,
        cell_duration: None,
        nginx: Some(std::path::PathBuf::from("nginx")),
    };
    // lab: 2 variants; sweeps: 5 and 4 counts; open loop: 2 rates;
    // c10k: 3 counts; rpc-sweep: 2 functions x 4 counts; files: 2
    // files. Plus 10,000 connections in http-sweep for the 7 models
    // without a worker limit, and nginx's 2 files.
    let cells = plan(&request);
    assert_eq!(
        cells.len(),
        MODELS.len() * (2 + 5 + 2 + 4 + 3 + 2 * 4 + 2) + 7 + 2
    );
    let most: Vec<&str> = cells
        .iter()
        .filter(|cell| cell.clients == SWEEP_MOST_CLIENTS && cell.scenario == Scenario::HttpSweep)
        .map(|cell| cell.model.as_str())
        .collect();
    assert_eq!(
        most,
        [
            "02-thread-per-client",
            "06-select",
            "07-epoll",
            "08-coroutines",
            "09-async",
            "10-mini-runtime",
            "11-io-uring"
        ]
    );
    let files: Vec<(&str, &str)> = cells
        .iter()
        .filter(|cell| cell.scenario == Scenario::Files)
        .map(|cell| (cell.model.as_str(), cell.variant()))
        .take(3)
        .collect();
    assert_eq!(
        files,
        [
            ("nginx", "small"),
            ("01-blocking", "small"),
            ("02-thread-per-client", "small")
        ]
    );
    let without_nginx = PlanRequest {
        nginx: None,
        scenarios: vec![Scenario::Files],
        ..request.clone()
    };
    assert_eq!(plan(&without_nginx).len(), MODELS.len() * 2);
    let rpc = PlanRequest {
        scenarios: vec![Scenario::RpcSweep],
        models: vec!["07-epoll".to_string()],
        clients: Some(vec![10]),
        ..request
    };
    let cells = plan(&rpc);
    let variants: Vec<&str> = cells.iter().map(Cell::variant).collect();
    assert_eq!(variants, ["query", "func1"]);
    assert!((cells[0].bound_rps(None).expect("query has a bound") - 33.3).abs() < 0.1);
    assert_eq!(cells[1].bound_rps(None), None, "func1 does not wait");
}
