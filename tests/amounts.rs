use ipow::base::amount::{AmountError, Energy, Money, Price};

#[test]
fn parses_and_prints_exactly() {
    let cases = [
        ("17.09", 170_900, "17.0900"),
        ("22.9", 229_000, "22.9000"),
        ("15", 150_000, "15.0000"),
        (".5", 5_000, "0.5000"),
        ("0", 0, "0.0000"),
    ];
    for (text, raw, shown) in cases {
        let p = Price::parse(text).unwrap();
        assert_eq!(p.raw(), raw, "{text}");
        assert_eq!(p.to_string(), shown, "{text}");
    }
    assert_eq!(Energy::parse("10.98").unwrap().raw(), 10_980);
    assert_eq!(Money::parse("-4.65").unwrap().raw(), -465);
    assert_eq!(Money::parse("-4.65").unwrap().to_string(), "-4.65");
    assert_eq!(Money::from_raw(-5).to_string(), "-0.05");
    assert_eq!(Energy::parse("10.98").unwrap().display_places(2), "10.98");
    // Display never rounds: a third decimal that is not zero is shown.
    assert_eq!(Energy::parse("10.985").unwrap().display_places(2), "10.985");
}

#[test]
fn rejects_bad_text_with_typed_errors() {
    assert!(matches!(
        Price::parse("17.09001"),
        Err(AmountError::TooManyDecimals {
            found: 5,
            max: 4,
            ..
        })
    ));
    assert!(matches!(
        Energy::parse("-1"),
        Err(AmountError::SignNotAllowed { .. })
    ));
    assert!(matches!(
        Energy::parse("+1"),
        Err(AmountError::SignNotAllowed { .. })
    ));
    assert!(matches!(Energy::parse(""), Err(AmountError::Empty)));
    assert!(matches!(Energy::parse("."), Err(AmountError::Empty)));
    assert!(matches!(Money::parse("-"), Err(AmountError::Empty)));
    assert!(matches!(
        Energy::parse("1.2.3"),
        Err(AmountError::InvalidCharacter {
            found: '.',
            position: 3,
            ..
        })
    ));
    assert!(matches!(
        Energy::parse("1e3"),
        Err(AmountError::InvalidCharacter { found: 'e', .. })
    ));
    assert!(matches!(
        Energy::parse(" 1"),
        Err(AmountError::InvalidCharacter { found: ' ', .. })
    ));
    assert!(matches!(
        Energy::parse("NaN"),
        Err(AmountError::InvalidCharacter { .. })
    ));
    // i64::MAX is 9223372036854775807; with 3 decimals the largest energy is 9223372036854775.807.
    assert_eq!(
        Energy::parse("9223372036854775.807").unwrap().raw(),
        i64::MAX
    );
    assert!(matches!(
        Energy::parse("9223372036854775.808"),
        Err(AmountError::Overflow { .. })
    ));
    assert_eq!(
        Money::parse("-92233720368547758.08").unwrap().raw(),
        i64::MIN
    );
    assert!(matches!(
        Money::parse("-92233720368547758.09"),
        Err(AmountError::Overflow { .. })
    ));
}

#[test]
fn price_times_energy_rounds_half_to_even_once() {
    let cost = |p: &str, e: &str| {
        Price::parse(p)
            .unwrap()
            .mul_energy_round_half_even(Energy::parse(e).unwrap())
            .unwrap()
            .to_string()
    };
    // The paper's f15: 17.09 x 10.98 = 187.6482.
    assert_eq!(cost("17.09", "10.98"), "187.65");
    assert_eq!(cost("1.5", "10.98"), "16.47");
    assert_eq!(cost("15", "10.98"), "164.70");
    // Exactly half a cent: to the even cent.
    assert_eq!(cost("1.5", "5.33"), "8.00"); // 7.995
    assert_eq!(cost("1.5", "3.65"), "5.48"); // 5.475
    assert_eq!(cost("0.0001", "0.125"), "0.00"); // 0.0000125
    assert_eq!(cost("0.05", "0.1"), "0.00"); // 0.005 -> 0.00 (0 is even)
    assert_eq!(cost("0.15", "0.1"), "0.02"); // 0.015 -> 0.02
    assert_eq!(cost("0.25", "0.1"), "0.02"); // 0.025 -> 0.02
    assert_eq!(cost("0.0001", "0.001"), "0.00");
}

#[test]
fn overflow_is_an_error_never_a_wrap() {
    let max_price = Price::from_raw(i64::MAX);
    let max_energy = Energy::from_raw(i64::MAX);
    assert!(matches!(
        max_price.mul_energy_round_half_even(max_energy),
        Err(AmountError::Overflow { .. })
    ));
    assert!(matches!(
        Money::from_raw(i64::MAX).checked_add(Money::from_raw(1)),
        Err(AmountError::Overflow { .. })
    ));
    assert!(matches!(
        Money::from_raw(i64::MIN).checked_sub(Money::from_raw(1)),
        Err(AmountError::Overflow { .. })
    ));
    assert!(matches!(
        Money::from_raw(i64::MIN).checked_neg(),
        Err(AmountError::Overflow { .. })
    ));
    assert!(matches!(
        Money::from_raw(-1).non_negative(),
        Err(AmountError::Negative { .. })
    ));
    // The largest product that fits: a price and an energy whose product in cents is just i64::MAX.
    let fits = Price::from_raw(100_000)
        .mul_energy_round_half_even(Energy::from_raw(i64::MAX))
        .unwrap();
    assert_eq!(fits.raw(), i64::MAX);
}

#[test]
fn amounts_cross_json_as_strings() {
    let json = serde_json::to_string(&Money::from_raw(18765)).unwrap();
    assert_eq!(json, "\"187.65\"");
    let back: Money = serde_json::from_str(&json).unwrap();
    assert_eq!(back.raw(), 18765);
    assert!(
        serde_json::from_str::<Money>("187.65").is_err(),
        "a JSON number is refused"
    );
    assert!(serde_json::from_str::<Energy>("\"1.0001\"").is_err());
}

proptest::proptest! {
    #[test]
    fn parse_display_round_trip(raw in proptest::num::i64::ANY) {
        let m = Money::from_raw(raw);
        proptest::prop_assert_eq!(Money::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn product_is_exact_product_rounded(price in 0i64..1_000_000_000, energy in 0i64..1_000_000_000) {
        // Reference: exact rational price*energy/1e5 rounded half to even, done with u128 by hand.
        let exact = u128::try_from(price).unwrap() * u128::try_from(energy).unwrap();
        let (q, r) = (exact / 100_000, exact % 100_000);
        let expected = if r > 50_000 || (r == 50_000 && q % 2 == 1) { q + 1 } else { q };
        let got = Price::from_raw(price).mul_energy_round_half_even(Energy::from_raw(energy)).unwrap();
        proptest::prop_assert_eq!(u128::try_from(got.raw()).unwrap(), expected);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
        let _ = Energy::parse(&text);
        let _ = Price::parse(&text);
        let _ = Money::parse(&text);
    }
}
