// Command ordoload drives a running Ordo like a storefront.
package main

func main() {}
